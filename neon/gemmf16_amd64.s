//go:build !purego

#include "textflag.h"

// func gemmF16T1x64AVX2(c *float32, a *float32, b *uint16, ldb int, k, add int)
//
// c[j] (+)= sum_p a[p] * float32(b[p][j]) for one row of 64 columns, b in
// half precision: gemmF32T1x64AVX2 with each of b's eight 8-value loads
// widened by VCVTPH2PS (F16C). k >= 1; ldb in elements.
TEXT ·gemmF16T1x64AVX2(SB), NOSPLIT, $0-48
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ ldb+24(FP), R10
	MOVQ k+32(FP), CX
	SHLQ $1, R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

rowh:
	VBROADCASTSS (SI), Y8
	VCVTPH2PS    (DX), Y9
	VCVTPH2PS    16(DX), Y10
	VCVTPH2PS    32(DX), Y11
	VCVTPH2PS    48(DX), Y12
	VFMADD231PS  Y9, Y8, Y0
	VFMADD231PS  Y10, Y8, Y1
	VFMADD231PS  Y11, Y8, Y2
	VFMADD231PS  Y12, Y8, Y3
	VCVTPH2PS    64(DX), Y13
	VCVTPH2PS    80(DX), Y14
	VCVTPH2PS    96(DX), Y15
	VCVTPH2PS    112(DX), Y9
	VFMADD231PS  Y13, Y8, Y4
	VFMADD231PS  Y14, Y8, Y5
	VFMADD231PS  Y15, Y8, Y6
	VFMADD231PS  Y9, Y8, Y7
	ADDQ         $4, SI
	ADDQ         R10, DX
	DECQ         CX
	JNZ          rowh

	MOVQ  add+40(FP), AX
	TESTQ AX, AX
	JZ    storeh
	VADDPS (DI), Y0, Y0
	VADDPS 32(DI), Y1, Y1
	VADDPS 64(DI), Y2, Y2
	VADDPS 96(DI), Y3, Y3
	VADDPS 128(DI), Y4, Y4
	VADDPS 160(DI), Y5, Y5
	VADDPS 192(DI), Y6, Y6
	VADDPS 224(DI), Y7, Y7

storeh:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	VZEROUPPER
	RET

// func f32ToF16AVX2(dst *uint16, src *float32, n int)
//
// Converts n values (n a multiple of 8, n >= 8) to half precision with
// VCVTPS2PH, rounding to nearest even.
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX

toh:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	DECQ      CX
	JNZ       toh
	VZEROUPPER
	RET

// func gemmF16T1x16AVX2(c *float32, a *float32, b *uint16, ldb int, k, add int)
//
// gemmF16T1x64AVX2 for 16 columns (the columns a row's 64-blocks leave):
// two accumulators.
TEXT ·gemmF16T1x16AVX2(SB), NOSPLIT, $0-48
	MOVQ c+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ ldb+24(FP), R10
	MOVQ k+32(FP), CX
	SHLQ $1, R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

rowh16:
	VBROADCASTSS (SI), Y8
	VCVTPH2PS    (DX), Y9
	VCVTPH2PS    16(DX), Y10
	VFMADD231PS  Y9, Y8, Y0
	VFMADD231PS  Y10, Y8, Y1
	ADDQ         $4, SI
	ADDQ         R10, DX
	DECQ         CX
	JNZ          rowh16

	MOVQ  add+40(FP), AX
	TESTQ AX, AX
	JZ    storeh16
	VADDPS (DI), Y0, Y0
	VADDPS 32(DI), Y1, Y1

storeh16:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VZEROUPPER
	RET
