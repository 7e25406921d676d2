#version 450
// GEMM, MODE_NN with A stored as fp16 (gemm.glsl; fp16 weights)
#extension GL_GOOGLE_include_directive : enable
#extension GL_EXT_shader_16bit_storage : require
#define MODE MODE_NN
#define A_F16 1
#include "gemm.glsl"
