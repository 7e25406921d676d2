#version 450
// GEMM, MODE_NT (gemm.glsl)
#extension GL_GOOGLE_include_directive : enable
#define MODE MODE_NT
#include "gemm.glsl"
