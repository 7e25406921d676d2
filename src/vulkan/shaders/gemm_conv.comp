#version 450
// GEMM, MODE_CONV (gemm.glsl)
#extension GL_GOOGLE_include_directive : enable
#define MODE MODE_CONV
#include "gemm.glsl"
