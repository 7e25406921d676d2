#version 450
// GEMM, MODE_NN with A stored as fp16 (gemm.glsl; fp16 weights), cooperative matrices (COOPMAT)
#extension GL_GOOGLE_include_directive : enable
#extension GL_EXT_shader_16bit_storage : require
#define COOPMAT 1
#define MODE MODE_NN
#define A_F16 1
#include "gemm.glsl"
