//go:build !purego

#include "textflag.h"

// Reductions for LayerNorm and RMSNorm in float64, as the Go twins do
// them (8 floats per iteration, four partial sums per lane), and the
// float32 apply step in the twins' operation order (no FMA), so that the
// outputs match the twins to the last bit but for the order of the
// float64 sums. n is a multiple of 8 in all of them.

// func sumF64AVX2(x *float32, n int) float64
TEXT ·sumF64AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $3, CX
	JZ   sumdone

sumloop:
	VCVTPS2PD 0(SI), Y0
	VCVTPS2PD 16(SI), Y1
	VADDPD Y0, Y2, Y2
	VADDPD Y1, Y3, Y3
	ADDQ $32, SI
	DECQ CX
	JNZ  sumloop

sumdone:
	VADDPD Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VADDPD X3, X2, X2
	VPERMILPD $1, X2, X3
	VADDSD X3, X2, X2
	VMOVSD X2, ret+16(FP)
	VZEROUPPER
	RET

// func sumSqDevF64AVX2(x *float32, n int, mean float64) float64
// sum (float64(x) - mean)^2; mean = 0 gives the sum of squares.
TEXT ·sumSqDevF64AVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSD mean+16(FP), Y4
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $3, CX
	JZ   sqdone

sqloop:
	VCVTPS2PD 0(SI), Y0
	VCVTPS2PD 16(SI), Y1
	VSUBPD Y4, Y0, Y0
	VSUBPD Y4, Y1, Y1
	VMULPD Y0, Y0, Y0
	VMULPD Y1, Y1, Y1
	VADDPD Y0, Y2, Y2
	VADDPD Y1, Y3, Y3
	ADDQ $32, SI
	DECQ CX
	JNZ  sqloop

sqdone:
	VADDPD Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VADDPD X3, X2, X2
	VPERMILPD $1, X2, X3
	VADDSD X3, X2, X2
	VMOVSD X2, ret+24(FP)
	VZEROUPPER
	RET

// func layerNormApplyAVX2(dst, x, w, b *float32, n int, m, inv float32)
// dst = (x - m) * inv * w + b
TEXT ·layerNormApplyAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), R8
	MOVQ b+24(FP), R9
	MOVQ n+32(FP), CX
	VBROADCASTSS m+40(FP), Y4
	VBROADCASTSS inv+44(FP), Y5
	SHRQ $3, CX
	JZ   lnadone

lnaloop:
	VMOVUPS (SI), Y0
	VSUBPS Y4, Y0, Y0
	VMULPS Y5, Y0, Y0
	VMULPS (R8), Y0, Y0
	VADDPS (R9), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  lnaloop

lnadone:
	VZEROUPPER
	RET

// func rmsNormApplyAVX2(dst, x, w *float32, n int, inv float32)
// dst = x * inv * w
TEXT ·rmsNormApplyAVX2(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), R8
	MOVQ n+24(FP), CX
	VBROADCASTSS inv+32(FP), Y5
	SHRQ $3, CX
	JZ   rmsadone

rmsaloop:
	VMOVUPS (SI), Y0
	VMULPS Y5, Y0, Y0
	VMULPS (R8), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	DECQ CX
	JNZ  rmsaloop

rmsadone:
	VZEROUPPER
	RET
