//go:build !purego

#include "textflag.h"

// AVX2 element-wise kernels on 8 floats at a time (the Go wrappers do the
// tails). exp is Cephes' expf: n = round(x*log2(e)), r = x - n*ln2 (in
// two parts), exp(r) = 1 + r + r^2*P(r) with a degree-5 minimax P, times
// 2^n built in the exponent field; about 1 ulp. Inputs are clamped to
// [-87.34, 88] and results below -87.34 (where exp is subnormal) are 0.
// GELU(tanh) = x / (1 + exp(-2z)), z = sqrt(2/pi)(x + 0.044715x^3), and
// SiLU = x / (1 + exp(-x)): the same functions as the twins' tanh and
// sigmoid forms without their cancellation.

DATA elog2e<>+0(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA elog2e<>+8(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA elog2e<>+16(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA elog2e<>+24(SB)/8, $0x3fb8aa3b3fb8aa3b
GLOBL elog2e<>(SB), RODATA|NOPTR, $32
DATA eln2hi<>+0(SB)/8, $0x3f3180003f318000
DATA eln2hi<>+8(SB)/8, $0x3f3180003f318000
DATA eln2hi<>+16(SB)/8, $0x3f3180003f318000
DATA eln2hi<>+24(SB)/8, $0x3f3180003f318000
GLOBL eln2hi<>(SB), RODATA|NOPTR, $32
DATA eln2lo<>+0(SB)/8, $0xb95e8083b95e8083
DATA eln2lo<>+8(SB)/8, $0xb95e8083b95e8083
DATA eln2lo<>+16(SB)/8, $0xb95e8083b95e8083
DATA eln2lo<>+24(SB)/8, $0xb95e8083b95e8083
GLOBL eln2lo<>(SB), RODATA|NOPTR, $32
DATA ehi<>+0(SB)/8, $0x42b0000042b00000
DATA ehi<>+8(SB)/8, $0x42b0000042b00000
DATA ehi<>+16(SB)/8, $0x42b0000042b00000
DATA ehi<>+24(SB)/8, $0x42b0000042b00000
GLOBL ehi<>(SB), RODATA|NOPTR, $32
DATA elo<>+0(SB)/8, $0xc2aeac4fc2aeac4f
DATA elo<>+8(SB)/8, $0xc2aeac4fc2aeac4f
DATA elo<>+16(SB)/8, $0xc2aeac4fc2aeac4f
DATA elo<>+24(SB)/8, $0xc2aeac4fc2aeac4f
GLOBL elo<>(SB), RODATA|NOPTR, $32
DATA eone<>+0(SB)/8, $0x3f8000003f800000
DATA eone<>+8(SB)/8, $0x3f8000003f800000
DATA eone<>+16(SB)/8, $0x3f8000003f800000
DATA eone<>+24(SB)/8, $0x3f8000003f800000
GLOBL eone<>(SB), RODATA|NOPTR, $32
DATA ep0<>+0(SB)/8, $0x3950696739506967
DATA ep0<>+8(SB)/8, $0x3950696739506967
DATA ep0<>+16(SB)/8, $0x3950696739506967
DATA ep0<>+24(SB)/8, $0x3950696739506967
GLOBL ep0<>(SB), RODATA|NOPTR, $32
DATA ep1<>+0(SB)/8, $0x3ab743ce3ab743ce
DATA ep1<>+8(SB)/8, $0x3ab743ce3ab743ce
DATA ep1<>+16(SB)/8, $0x3ab743ce3ab743ce
DATA ep1<>+24(SB)/8, $0x3ab743ce3ab743ce
GLOBL ep1<>(SB), RODATA|NOPTR, $32
DATA ep2<>+0(SB)/8, $0x3c0889083c088908
DATA ep2<>+8(SB)/8, $0x3c0889083c088908
DATA ep2<>+16(SB)/8, $0x3c0889083c088908
DATA ep2<>+24(SB)/8, $0x3c0889083c088908
GLOBL ep2<>(SB), RODATA|NOPTR, $32
DATA ep3<>+0(SB)/8, $0x3d2aa9c13d2aa9c1
DATA ep3<>+8(SB)/8, $0x3d2aa9c13d2aa9c1
DATA ep3<>+16(SB)/8, $0x3d2aa9c13d2aa9c1
DATA ep3<>+24(SB)/8, $0x3d2aa9c13d2aa9c1
GLOBL ep3<>(SB), RODATA|NOPTR, $32
DATA ep4<>+0(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA ep4<>+8(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA ep4<>+16(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA ep4<>+24(SB)/8, $0x3e2aaaaa3e2aaaaa
GLOBL ep4<>(SB), RODATA|NOPTR, $32
DATA ep5<>+0(SB)/8, $0x3f0000003f000000
DATA ep5<>+8(SB)/8, $0x3f0000003f000000
DATA ep5<>+16(SB)/8, $0x3f0000003f000000
DATA ep5<>+24(SB)/8, $0x3f0000003f000000
GLOBL ep5<>(SB), RODATA|NOPTR, $32
DATA egk<>+0(SB)/8, $0x3d3727133d372713
DATA egk<>+8(SB)/8, $0x3d3727133d372713
DATA egk<>+16(SB)/8, $0x3d3727133d372713
DATA egk<>+24(SB)/8, $0x3d3727133d372713
GLOBL egk<>(SB), RODATA|NOPTR, $32
DATA egm2c<>+0(SB)/8, $0xbfcc422abfcc422a
DATA egm2c<>+8(SB)/8, $0xbfcc422abfcc422a
DATA egm2c<>+16(SB)/8, $0xbfcc422abfcc422a
DATA egm2c<>+24(SB)/8, $0xbfcc422abfcc422a
GLOBL egm2c<>(SB), RODATA|NOPTR, $32
DATA e127<>+0(SB)/8, $0x0000007f0000007f
DATA e127<>+8(SB)/8, $0x0000007f0000007f
DATA e127<>+16(SB)/8, $0x0000007f0000007f
DATA e127<>+24(SB)/8, $0x0000007f0000007f
GLOBL e127<>(SB), RODATA|NOPTR, $32

// func geluAVX2(x *float32, n int)   (n a multiple of 8)
TEXT ·geluAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	JZ   geludone
	VMOVUPS elog2e<>(SB), Y15
	VMOVUPS eln2hi<>(SB), Y14
	VMOVUPS eln2lo<>(SB), Y13
	VMOVUPS ehi<>(SB), Y12
	VMOVUPS elo<>(SB), Y11
	VMOVUPS eone<>(SB), Y10
	VMOVDQU e127<>(SB), Y9
geluloop:
	VMOVUPS (SI), Y0
	VMULPS Y0, Y0, Y1
	VMULPS egk<>(SB), Y1, Y1
	VADDPS Y10, Y1, Y1
	VMULPS Y0, Y1, Y1
	VMULPS egm2c<>(SB), Y1, Y1
	VMINPS Y12, Y1, Y1
	VCMPPS $13, Y11, Y1, Y4
	VMAXPS Y11, Y1, Y1
	VMULPS Y15, Y1, Y2
	VROUNDPS $0, Y2, Y2
	VFNMADD231PS Y14, Y2, Y1
	VFNMADD231PS Y13, Y2, Y1
	VMOVUPS ep0<>(SB), Y3
	VFMADD213PS ep1<>(SB), Y1, Y3
	VFMADD213PS ep2<>(SB), Y1, Y3
	VFMADD213PS ep3<>(SB), Y1, Y3
	VFMADD213PS ep4<>(SB), Y1, Y3
	VFMADD213PS ep5<>(SB), Y1, Y3
	VFMADD213PS Y10, Y1, Y3
	VFMADD213PS Y10, Y1, Y3
	VCVTPS2DQ Y2, Y2
	VPADDD Y9, Y2, Y2
	VPSLLD $23, Y2, Y2
	VMULPS Y2, Y3, Y1
	VANDPS Y4, Y1, Y1
	VADDPS Y10, Y1, Y1
	VDIVPS Y1, Y0, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ  geluloop

geludone:
	VZEROUPPER
	RET

// func siluAVX2(x *float32, n int)   (n a multiple of 8)
TEXT ·siluAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	JZ   siludone
	VMOVUPS elog2e<>(SB), Y15
	VMOVUPS eln2hi<>(SB), Y14
	VMOVUPS eln2lo<>(SB), Y13
	VMOVUPS ehi<>(SB), Y12
	VMOVUPS elo<>(SB), Y11
	VMOVUPS eone<>(SB), Y10
	VMOVDQU e127<>(SB), Y9
siluloop:
	VMOVUPS (SI), Y0
	VXORPS Y1, Y1, Y1
	VSUBPS Y0, Y1, Y1
	VMINPS Y12, Y1, Y1
	VCMPPS $13, Y11, Y1, Y4
	VMAXPS Y11, Y1, Y1
	VMULPS Y15, Y1, Y2
	VROUNDPS $0, Y2, Y2
	VFNMADD231PS Y14, Y2, Y1
	VFNMADD231PS Y13, Y2, Y1
	VMOVUPS ep0<>(SB), Y3
	VFMADD213PS ep1<>(SB), Y1, Y3
	VFMADD213PS ep2<>(SB), Y1, Y3
	VFMADD213PS ep3<>(SB), Y1, Y3
	VFMADD213PS ep4<>(SB), Y1, Y3
	VFMADD213PS ep5<>(SB), Y1, Y3
	VFMADD213PS Y10, Y1, Y3
	VFMADD213PS Y10, Y1, Y3
	VCVTPS2DQ Y2, Y2
	VPADDD Y9, Y2, Y2
	VPSLLD $23, Y2, Y2
	VMULPS Y2, Y3, Y1
	VANDPS Y4, Y1, Y1
	VADDPS Y10, Y1, Y1
	VDIVPS Y1, Y0, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ  siluloop

siludone:
	VZEROUPPER
	RET

// func softmaxExpAVX2(x *float32, n int, m float32) float32   (n a multiple of 8)
// x[i] = exp(x[i] - m); returns the sum.
TEXT ·softmaxExpAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y8
	VXORPS Y7, Y7, Y7
	SHRQ $3, CX
	JZ   smdone
	VMOVUPS elog2e<>(SB), Y15
	VMOVUPS eln2hi<>(SB), Y14
	VMOVUPS eln2lo<>(SB), Y13
	VMOVUPS ehi<>(SB), Y12
	VMOVUPS elo<>(SB), Y11
	VMOVUPS eone<>(SB), Y10
	VMOVDQU e127<>(SB), Y9
smloop:
	VMOVUPS (SI), Y1
	VSUBPS Y8, Y1, Y1
	VMINPS Y12, Y1, Y1
	VCMPPS $13, Y11, Y1, Y4
	VMAXPS Y11, Y1, Y1
	VMULPS Y15, Y1, Y2
	VROUNDPS $0, Y2, Y2
	VFNMADD231PS Y14, Y2, Y1
	VFNMADD231PS Y13, Y2, Y1
	VMOVUPS ep0<>(SB), Y3
	VFMADD213PS ep1<>(SB), Y1, Y3
	VFMADD213PS ep2<>(SB), Y1, Y3
	VFMADD213PS ep3<>(SB), Y1, Y3
	VFMADD213PS ep4<>(SB), Y1, Y3
	VFMADD213PS ep5<>(SB), Y1, Y3
	VFMADD213PS Y10, Y1, Y3
	VFMADD213PS Y10, Y1, Y3
	VCVTPS2DQ Y2, Y2
	VPADDD Y9, Y2, Y2
	VPSLLD $23, Y2, Y2
	VMULPS Y2, Y3, Y1
	VANDPS Y4, Y1, Y1
	VMOVUPS Y1, (SI)
	VADDPS Y1, Y7, Y7
	ADDQ $32, SI
	DECQ CX
	JNZ  smloop

smdone:
	VEXTRACTF128 $1, Y7, X1
	VADDPS X1, X7, X7
	VMOVHLPS X7, X1, X1
	VADDPS X1, X7, X7
	VMOVSHDUP X7, X1
	VADDSS X1, X7, X7
	VMOVSS X7, ret+24(FP)
	VZEROUPPER
	RET
