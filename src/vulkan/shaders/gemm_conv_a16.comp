#version 450
// GEMM, MODE_CONV with A stored as fp16 (gemm.glsl; fp16 weights)
#extension GL_GOOGLE_include_directive : enable
#extension GL_EXT_shader_16bit_storage : require
#define MODE MODE_CONV
#define A_F16 1
#include "gemm.glsl"
