// Shared by the compute shaders (included; not compiled alone).
// Conventions: every buffer is float32 std430 (the attention mask: bytes
// packed in uints); a shader's push constants begin with one element offset
// per binding (vk_dispatch fills them), then its own parameters.

#define NEG_INF uintBitsToFloat(0xff800000u)

// The linear index of this workgroup in a 2-D grid (vk_groups_2d).
uint group_linear() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }

// erf(x), max error about 1 ulp: N. Juffa's minimax erff, the polynomial of
// the CPU kernel (ops_norm.c); GLSL has no erf.
float erf_approx(float a) {
    float t = abs(a), s = a * a;
    float r;
    if (t > 0.927734375) {
        r = fma(-1.72853470e-5, t, 3.83197126e-4);
        float u = fma(-3.88396438e-3, t, 2.42546219e-2);
        r = fma(r, s, u);
        r = fma(r, t, -1.06777877e-1);
        r = fma(r, t, -6.34846687e-1);
        r = fma(r, t, -1.28717512e-1);
        r = fma(r, t, -t);
        r = 1.0 - exp(r);
        r = a < 0.0 ? -r : r;
    } else {
        r = -5.96761703e-4;
        r = fma(r, s, 4.99119423e-3);
        r = fma(r, s, -2.67681349e-2);
        r = fma(r, s, 1.12819925e-1);
        r = fma(r, s, -3.76125336e-1);
        r = fma(r, s, 1.28379166e-1);
        r = fma(r, a, a);
    }
    return r;
}

// torch's forms
float gelu_erf(float x) { return x * 0.5 * (1.0 + erf_approx(x * 0.70710678118654752)); }
float silu(float x) { return x / (1.0 + exp(-x)); }
float gelu_tanh(float x) {
    // tanh of large arguments may overflow inside the driver's exp: clamp
    // where tanh is already +-1 in float32
    float k = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -10.0, 10.0);
    return 0.5 * x * (1.0 + tanh(k));
}
float quick_gelu(float x) { return x / (1.0 + exp(x * -1.702)); }
