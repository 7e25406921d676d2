#version 450
// GEMM, MODE_NN (gemm.glsl)
#extension GL_GOOGLE_include_directive : enable
#define MODE MODE_NN
#include "gemm.glsl"
