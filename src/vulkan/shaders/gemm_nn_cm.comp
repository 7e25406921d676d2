#version 450
// GEMM, MODE_NN (gemm.glsl), cooperative matrices (COOPMAT)
#extension GL_GOOGLE_include_directive : enable
#define COOPMAT 1
#define MODE MODE_NN
#include "gemm.glsl"
