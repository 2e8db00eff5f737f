//go:build !purego

#include "textflag.h"

DATA qabsmask<>+0(SB)/4, $0x7fffffff
GLOBL qabsmask<>(SB), RODATA|NOPTR, $4
DATA qsignmask<>+0(SB)/4, $0x80000000
GLOBL qsignmask<>(SB), RODATA|NOPTR, $4
DATA qhalfbelow<>+0(SB)/4, $0x3effffff // 0.49999997, the float below 0.5
GLOBL qhalfbelow<>(SB), RODATA|NOPTR, $4
DATA q127<>+0(SB)/4, $0x42fe0000 // 127.0
GLOBL q127<>(SB), RODATA|NOPTR, $4
DATA qone<>+0(SB)/4, $0x3f800000 // 1.0
GLOBL qone<>(SB), RODATA|NOPTR, $4
DATA qperm<>+0(SB)/4, $0
DATA qperm<>+4(SB)/4, $4
DATA qperm<>+8(SB)/4, $1
DATA qperm<>+12(SB)/4, $5
DATA qperm<>+16(SB)/4, $2
DATA qperm<>+20(SB)/4, $6
DATA qperm<>+24(SB)/4, $3
DATA qperm<>+28(SB)/4, $7
GLOBL qperm<>(SB), RODATA|NOPTR, $32

// func quantizeActAVX2(qs *byte, ds *float32, sums *int32, src *float32, nb int)
// ggml's quantize_row_q8_0_ref per 32-float block: d = amax/127 (stored
// f16-rounded), q = round-half-away(x * (1/d)). Rounding half away from
// zero is trunc(y + copysign(0.49999997, y)), exact for |y| <= 128
// (checked for every float32 in that range).
TEXT ·quantizeActAVX2(SB), NOSPLIT, $0-40
	MOVQ qs+0(FP), DI
	MOVQ ds+8(FP), DX
	MOVQ sums+16(FP), R8
	MOVQ src+24(FP), SI
	MOVQ nb+32(FP), CX
	VBROADCASTSS qabsmask<>(SB), Y15
	VBROADCASTSS qsignmask<>(SB), Y14
	VBROADCASTSS qhalfbelow<>(SB), Y13
	VMOVDQU qperm<>(SB), Y12
	VXORPS X11, X11, X11

qaloop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VANDPS Y15, Y0, Y4
	VANDPS Y15, Y1, Y5
	VANDPS Y15, Y2, Y6
	VANDPS Y15, Y3, Y7
	VMAXPS Y5, Y4, Y4
	VMAXPS Y7, Y6, Y6
	VMAXPS Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X5, X4, X4
	VMOVHLPS X4, X5, X5
	VMAXPS X5, X4, X4
	VPSHUFD $1, X4, X5
	VMAXSS X5, X4, X4            // amax
	VDIVSS q127<>(SB), X4, X5    // d = amax / 127
	VCVTPS2PH $0, X5, X6
	VCVTPH2PS X6, X6
	VMOVSS X6, (DX)              // f16-rounded scale
	VMOVSS qone<>(SB), X7
	VDIVSS X5, X7, X7            // 1/d
	VCMPSS $4, X11, X5, X8       // d != 0
	VANDPS X8, X7, X7            // id = 0 when d = 0
	VBROADCASTSS X7, Y7
	VMULPS Y7, Y0, Y0
	VMULPS Y7, Y1, Y1
	VMULPS Y7, Y2, Y2
	VMULPS Y7, Y3, Y3
	VANDPS Y14, Y0, Y4
	VANDPS Y14, Y1, Y5
	VANDPS Y14, Y2, Y6
	VANDPS Y14, Y3, Y8
	VORPS Y13, Y4, Y4
	VORPS Y13, Y5, Y5
	VORPS Y13, Y6, Y6
	VORPS Y13, Y8, Y8
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y8, Y3, Y3
	VCVTTPS2DQ Y0, Y0
	VCVTTPS2DQ Y1, Y1
	VCVTTPS2DQ Y2, Y2
	VCVTTPS2DQ Y3, Y3
	VPADDD Y1, Y0, Y4
	VPADDD Y3, Y2, Y5
	VPADDD Y5, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0x4e, X4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0xb1, X4, X5
	VPADDD X5, X4, X4
	VMOVD X4, (R8)               // sum of the quants
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y12, Y0
	VMOVDQU Y0, (DI)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, R8
	DECQ CX
	JNZ  qaloop
	VZEROUPPER
	RET

// func f16ToF32AVX2(dst *float32, src *byte, n int)
// Converts n half-precision values (n a multiple of 16) with VCVTPH2PS.
TEXT ·f16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JZ   f16done

f16loop:
	VCVTPH2PS 0(SI), Y0
	VCVTPH2PS 16(SI), Y1
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $32, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  f16loop

f16done:
	VZEROUPPER
	RET

// func dotF16AVX2(w *byte, x *float32, n int) float32
// sum of half(w[i]) * x[i] for n a multiple of 32 (n > 0).
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	SHRQ $5, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

dotf16loop:
	VCVTPH2PS 0(SI), Y4
	VCVTPH2PS 16(SI), Y5
	VCVTPH2PS 32(SI), Y6
	VCVTPH2PS 48(SI), Y7
	VFMADD231PS 0(DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $64, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  dotf16loop
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X1, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET
