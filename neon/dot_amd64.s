//go:build !purego

#include "textflag.h"

// AVX2 kernels. Q8_0 blocks are 34 bytes (f16 scale, 32 int8), Q4_0 blocks
// 18 bytes (f16 scale, 16 bytes of nibbles). The activation operand x is
// Q8_0 with quants in [-127, 127]; the int8 products use the sign trick
// |w| (u8) * (x * sign(w)) (s8) with VPMADDUBSW, exact under that range.

DATA ones16<>+0(SB)/8, $0x0001000100010001
DATA ones16<>+8(SB)/8, $0x0001000100010001
DATA ones16<>+16(SB)/8, $0x0001000100010001
DATA ones16<>+24(SB)/8, $0x0001000100010001
GLOBL ones16<>(SB), RODATA|NOPTR, $32

DATA nib<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nib<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nib<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nib<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL nib<>(SB), RODATA|NOPTR, $32

DATA eights<>+0(SB)/8, $0x0808080808080808
DATA eights<>+8(SB)/8, $0x0808080808080808
DATA eights<>+16(SB)/8, $0x0808080808080808
DATA eights<>+24(SB)/8, $0x0808080808080808
GLOBL eights<>(SB), RODATA|NOPTR, $32

// SCALES4 loads the four f16 scales of w0, w1, x0, x1 (R8-R11) and stores
// {dw0*dx0, dw1*dx0, dw0*dx1, dw1*dx1} at 0(SP).
#define SCALES4 \
	MOVWLZX (R8), AX \
	VMOVD   AX, X12 \
	MOVWLZX (R9), AX \
	VPINSRW $1, AX, X12, X12 \
	MOVWLZX (R10), AX \
	VPINSRW $2, AX, X12, X12 \
	MOVWLZX (R11), AX \
	VPINSRW $3, AX, X12, X12 \
	VCVTPH2PS X12, X12 \
	VMOVLHPS X12, X12, X13 \
	VPERMILPS $0xFA, X12, X14 \
	VMULPS X14, X13, X13 \
	VMOVUPS X13, 0(SP)

// ACCUM4 converts the s32 sums in Y8-Y11 and accumulates them with the
// scales at 0(SP) into Y0-Y3.
#define ACCUM4 \
	VCVTDQ2PS Y8, Y8 \
	VCVTDQ2PS Y9, Y9 \
	VCVTDQ2PS Y10, Y10 \
	VCVTDQ2PS Y11, Y11 \
	VBROADCASTSS 0(SP), Y12 \
	VBROADCASTSS 4(SP), Y13 \
	VBROADCASTSS 8(SP), Y14 \
	VFMADD231PS Y12, Y8, Y0 \
	VBROADCASTSS 12(SP), Y12 \
	VFMADD231PS Y13, Y9, Y1 \
	VFMADD231PS Y14, Y10, Y2 \
	VFMADD231PS Y12, Y11, Y3

// STORE4 reduces Y0-Y3 to four floats at (DX).
#define STORE4 \
	VHADDPS Y1, Y0, Y0 \
	VHADDPS Y3, Y2, Y2 \
	VHADDPS Y2, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS X1, X0, X0 \
	VMOVUPS X0, (DX)

// func dotQ8AVX2(w, x *byte, nb int) float32
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VMOVDQU ones16<>(SB), Y15

q8loop:
	TESTQ CX, CX
	JZ    q8done
	MOVWLZX (SI), AX
	MOVWLZX (DI), BX
	VMOVD   AX, X2
	VPINSRW $1, BX, X2, X2
	VCVTPH2PS X2, X2             // [dw, dx, 0, 0]
	VMOVSHDUP X2, X3              // [dx, dx, ...]
	VMULSS  X3, X2, X2
	VBROADCASTSS X2, Y2           // dw*dx
	VMOVDQU 2(SI), Y3             // w
	VMOVDQU 2(DI), Y4             // x
	VPSIGNB Y3, Y4, Y4            // x * sign(w)
	VPABSB  Y3, Y3                // |w| as u8
	VPMADDUBSW Y4, Y3, Y4         // 16 x s16 pair sums
	VPMADDWD Y15, Y4, Y4          // 8 x s32
	VCVTDQ2PS Y4, Y4
	VFMADD231PS Y4, Y2, Y0
	ADDQ $34, SI
	ADDQ $34, DI
	DECQ CX
	JMP  q8loop

q8done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X1, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotQ8x2AVX2(out *[4]float32, w0, w1, x0, x1 *byte, nb int)
// out = {w0·x0, w1·x0, w0·x1, w1·x1}
TEXT ·dotQ8x2AVX2(SB), NOSPLIT, $16-48
	MOVQ out+0(FP), DX
	MOVQ w0+8(FP), R8
	MOVQ w1+16(FP), R9
	MOVQ x0+24(FP), R10
	MOVQ x1+32(FP), R11
	MOVQ nb+40(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VMOVDQU ones16<>(SB), Y15

q8x2loop:
	TESTQ CX, CX
	JZ    q8x2done
	SCALES4
	VMOVDQU 2(R8), Y4             // w0
	VMOVDQU 2(R9), Y5             // w1
	VMOVDQU 2(R10), Y6            // x0
	VMOVDQU 2(R11), Y7            // x1
	VPSIGNB Y4, Y6, Y8            // x0 * sign(w0)
	VPSIGNB Y5, Y6, Y9            // x0 * sign(w1)
	VPSIGNB Y4, Y7, Y10           // x1 * sign(w0)
	VPSIGNB Y5, Y7, Y11           // x1 * sign(w1)
	VPABSB  Y4, Y4
	VPABSB  Y5, Y5
	VPMADDUBSW Y8, Y4, Y8
	VPMADDUBSW Y9, Y5, Y9
	VPMADDUBSW Y10, Y4, Y10
	VPMADDUBSW Y11, Y5, Y11
	VPMADDWD Y15, Y8, Y8
	VPMADDWD Y15, Y9, Y9
	VPMADDWD Y15, Y10, Y10
	VPMADDWD Y15, Y11, Y11
	ACCUM4
	ADDQ $34, R8
	ADDQ $34, R9
	ADDQ $34, R10
	ADDQ $34, R11
	DECQ CX
	JMP  q8x2loop

q8x2done:
	STORE4
	VZEROUPPER
	RET


// func dotQ4Q8AVX2(w, x *byte, nb int) float32
// Sum over a block: sum (n-8)*x = sum n*x - 8*sum x, n the unsigned nibble.
TEXT ·dotQ4Q8AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	VXORPS Y0, Y0, Y0
	VMOVDQU ones16<>(SB), Y15
	VMOVDQU nib<>(SB), Y14
	VMOVDQU eights<>(SB), Y13

q4loop:
	TESTQ CX, CX
	JZ    q4done
	MOVWLZX (SI), AX
	MOVWLZX (DI), BX
	VMOVD   AX, X2
	VPINSRW $1, BX, X2, X2
	VCVTPH2PS X2, X2
	VMOVSHDUP X2, X3
	VMULSS  X3, X2, X2
	VBROADCASTSS X2, Y2
	VMOVDQU 2(SI), X3
	VPSRLW $4, X3, X5
	VINSERTI128 $1, X5, Y3, Y3
	VPAND Y14, Y3, Y3             // nibbles
	VMOVDQU 2(DI), Y4             // x
	VPMADDUBSW Y4, Y3, Y5         // n*x pairs
	VPMADDUBSW Y4, Y13, Y6        // 8*x pairs
	VPSUBW  Y6, Y5, Y5
	VPMADDWD Y15, Y5, Y5
	VCVTDQ2PS Y5, Y5
	VFMADD231PS Y5, Y2, Y0
	ADDQ $18, SI
	ADDQ $34, DI
	DECQ CX
	JMP  q4loop

q4done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X1, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotQ4Q8x2AVX2(out *[4]float32, w0, w1, x0, x1 *byte, nb int)
TEXT ·dotQ4Q8x2AVX2(SB), NOSPLIT, $16-48
	MOVQ out+0(FP), DX
	MOVQ w0+8(FP), R8
	MOVQ w1+16(FP), R9
	MOVQ x0+24(FP), R10
	MOVQ x1+32(FP), R11
	MOVQ nb+40(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

q4x2loop:
	TESTQ CX, CX
	JZ    q4x2done
	SCALES4
	VMOVDQU nib<>(SB), Y14
	VMOVDQU 2(R8), X4
	VPSRLW $4, X4, X8
	VINSERTI128 $1, X8, Y4, Y4
	VPAND Y14, Y4, Y4             // w0 nibbles
	VMOVDQU 2(R9), X5
	VPSRLW $4, X5, X8
	VINSERTI128 $1, X8, Y5, Y5
	VPAND Y14, Y5, Y5             // w1 nibbles
	VMOVDQU 2(R10), Y6            // x0
	VMOVDQU 2(R11), Y7            // x1
	VMOVDQU eights<>(SB), Y15
	VPMADDUBSW Y6, Y15, Y12       // 8*x0 pairs
	VPMADDUBSW Y7, Y15, Y13       // 8*x1 pairs
	VPMADDUBSW Y6, Y4, Y8
	VPMADDUBSW Y6, Y5, Y9
	VPMADDUBSW Y7, Y4, Y10
	VPMADDUBSW Y7, Y5, Y11
	VPSUBW Y12, Y8, Y8
	VPSUBW Y12, Y9, Y9
	VPSUBW Y13, Y10, Y10
	VPSUBW Y13, Y11, Y11
	VMOVDQU ones16<>(SB), Y15
	VPMADDWD Y15, Y8, Y8
	VPMADDWD Y15, Y9, Y9
	VPMADDWD Y15, Y10, Y10
	VPMADDWD Y15, Y11, Y11
	ACCUM4
	ADDQ $18, R8
	ADDQ $18, R9
	ADDQ $34, R10
	ADDQ $34, R11
	DECQ CX
	JMP  q4x2loop

q4x2done:
	STORE4
	VZEROUPPER
	RET

// func dotF32AVX2(a, b *float32, n int) float32
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

f32loop32:
	CMPQ CX, $32
	JL   f32loop8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  f32loop32

f32loop8:
	CMPQ CX, $8
	JL   f32tail
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  f32loop8

f32tail:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X1, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0

f32tail1:
	TESTQ CX, CX
	JZ    f32done
	VMOVSS (SI), X4
	VFMADD231SS (DI), X4, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  f32tail1

f32done:
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func axpyAVX2(y *float32, a float32, x *float32, n int)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	VBROADCASTSS a+8(FP), Y0
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), CX

axloop16:
	CMPQ CX, $16
	JL   axloop1
	VMOVUPS (DI), Y1
	VMOVUPS 32(DI), Y2
	VFMADD231PS (SI), Y0, Y1
	VFMADD231PS 32(SI), Y0, Y2
	VMOVUPS Y1, (DI)
	VMOVUPS Y2, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  axloop16

axloop1:
	TESTQ CX, CX
	JZ    axdone
	VMOVSS (DI), X1
	VFMADD231SS (SI), X0, X1
	VMOVSS X1, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  axloop1

axdone:
	VZEROUPPER
	RET
