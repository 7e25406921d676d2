#version 450
// GEMM, MODE_NT (gemm.glsl), cooperative matrices (COOPMAT)
#extension GL_GOOGLE_include_directive : enable
#define COOPMAT 1
#define MODE MODE_NT
#include "gemm.glsl"
