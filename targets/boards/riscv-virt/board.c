/* Board support for QEMU riscv32 `virt` (RV32IMAC in machine mode), behind the firmware's
 * board interface (targets/firmware/board.h): the ns16550a UART (TX polled, RX by its interrupt
 * through the PLIC into a ring buffer, WFI while it is empty), the SiFive test finisher for the
 * exit code, a semihosting console byte for the link's trust signal (board_link_trusted), and
 * where the storage is in the file-backed RAM (portable.c erases and programs it).
 *
 * QEMU 7.2 hw/riscv/virt.c memory map used here: the test finisher at 0x100000; UART0
 * (ns16550a, byte registers) at 0x10000000 on PLIC source 10; PLIC at 0x0c000000, context 0 =
 * hart 0 machine mode; pflash0 at 0x20000000 (the code, run in place); RAM at 0x80000000 (the
 * storage at its start, then the data memory: riscv-virt.ld.S). The launcher runs
 *   qemu-system-riscv32 -M virt -bios none -nodefaults -nographic -monitor none
 *     -drive if=pflash,unit=0,format=raw,readonly=on,file=<the ELF as a 32 MiB raw image>
 *     -object memory-backend-file,id=ram,size=16M,mem-path=<storage file>,share=on
 *     -machine memory-backend=ram -serial <the link>
 *     -semihosting-config enable=on,target=native,chardev=<the trust socket>
 * (-bios none: no OpenSBI written over the storage; with a pflash drive QEMU's reset code jumps
 * to 0x20000000). */
#include "../../firmware/board.h"

#define REG8(addr) (*(volatile uint8_t *)(addr))
#define REG32(addr) (*(volatile uint32_t *)(addr))

/* ns16550a */
#define UART 0x10000000u
#define UART_RBR REG8(UART + 0)        /* read: received byte; write: THR, byte to send */
#define UART_THR REG8(UART + 0)
#define UART_IER REG8(UART + 1)        /* bit0: received-data interrupt */
#define UART_LCR REG8(UART + 3)
#define UART_MCR REG8(UART + 4)
#define UART_LSR REG8(UART + 5)        /* bit0: data ready; bit5: THR empty */
#define IER_RX 0x01u
#define LCR_8N1 0x03u
#define MCR_DTR_RTS_OUT2 0x0Bu         /* OUT2 gates the interrupt line on a real 16550 */
#define LSR_DR 0x01u
#define LSR_THRE 0x20u
#define UART_IRQ 10u

/* PLIC, context 0 (hart 0, machine mode) */
#define PLIC 0x0c000000u
#define PLIC_PRIORITY(irq) REG32(PLIC + 4u * (irq))
#define PLIC_ENABLE0 REG32(PLIC + 0x2000u)
#define PLIC_THRESHOLD0 REG32(PLIC + 0x200000u)
#define PLIC_CLAIM0 REG32(PLIC + 0x200004u)

/* The CSR instructions, with Zicsr named for the assembler only: the catalogue's
 * -march=rv32imac is what selects gcc's rv32imac/ilp32 libgcc (rv32imac_zicsr matches no
 * multilib), and Zicsr adds nothing the compiler itself would emit. */
#define ZICSR(insn) ".option push\n.option arch, +zicsr\n" insn "\n.option pop\n"
#define CSR_SET(csr, bits) __asm__ volatile(ZICSR("csrs " #csr ", %0") :: "r"(bits) : "memory")
#define CSR_CLEAR(csr, bits) __asm__ volatile(ZICSR("csrc " #csr ", %0") :: "r"(bits) : "memory")

/* The SiFive test finisher: QEMU exits with status 0 on PASS, with `code` on (code << 16) | FAIL. */
#define TEST_FINISHER REG32(0x00100000u)
#define FINISHER_PASS 0x5555u
#define FINISHER_FAIL 0x3333u

#define MSTATUS_MIE (1u << 3)
#define MIE_MEIE (1u << 11)
#define MCAUSE_INTERRUPT 0x80000000u
#define MCAUSE_MACHINE_EXTERNAL 11u
#define MCAUSE_BREAKPOINT 3u

/* Semihosting (the RISC-V binding of Arm's) for the trust signal only, so that the exit code
 * does not depend on QEMU's -semihosting-config: SYS_WRITEC writes one console byte. */
#define SYS_WRITEC 0x03u
#define BOOTED_BYTE 0x42u              /* 'B', once, from board_init */
#define TRUSTED_BYTE 0x54u             /* 'T', per authenticated request */

#define RING 256u                      /* a power of two */
static volatile uint8_t rx_ring[RING];
static volatile uint32_t rx_head, rx_tail;   /* head: written by the interrupt; tail: by the reader */

/* The semihosting trap: QEMU recognises exactly this uncompressed sequence (slli/ebreak/srai
 * within one page, hence the alignment); a0 the operation, a1 its argument. With semihosting off
 * the ebreak is a breakpoint exception, which board_trap steps over: the byte is lost. */
static void semihost(uint32_t op, const volatile void *arg)
{
    register uint32_t a0 __asm__("a0") = op;
    register const volatile void *a1 __asm__("a1") = arg;
    __asm__ volatile(
        ".option push\n"
        ".option norvc\n"
        ".balign 16\n"
        "slli x0, x0, 0x1f\n"
        "ebreak\n"
        "srai x0, x0, 7\n"
        ".option pop\n"
        : "+r"(a0) : "r"(a1) : "memory");   /* a0: the result, unused */
}

static void trust_signal(uint8_t byte)
{
    volatile uint32_t slot = byte;     /* SYS_WRITEC reads the byte at a1 (little-endian) */
    semihost(SYS_WRITEC, &slot);
}

void board_init(void)
{
    rx_head = rx_tail = 0;
    /* The FIFO stays off (16450 mode: one byte held at a time, as the CMSDK UART on mps2). Turning
     * it on resets it, and QEMU 7.2 then drops the byte it held (the host may send before the
     * board is up) and never asks the chardev for more: the link would hang for good. */
    UART_LCR = LCR_8N1;                /* no divisor to set: QEMU's link is a socket at any rate */
    UART_MCR = MCR_DTR_RTS_OUT2;
    UART_IER = IER_RX;

    PLIC_PRIORITY(UART_IRQ) = 1;
    PLIC_THRESHOLD0 = 0;
    PLIC_ENABLE0 = 1u << UART_IRQ;
    CSR_SET(mie, MIE_MEIE);
    CSR_SET(mstatus, MSTATUS_MIE);
    trust_signal(BOOTED_BYTE);         /* up: the broker announces the board's port */
}

/* Drain the UART into the ring. When the ring is full the RX interrupt is disabled and the
 * byte stays in the UART: QEMU then holds the rest back, so nothing is ever dropped. */
static void rx_drain(void)
{
    while (UART_LSR & LSR_DR) {
        if (rx_head - rx_tail >= RING) {
            UART_IER = 0;
            return;
        }
        rx_ring[rx_head % RING] = UART_RBR;
        rx_head = rx_head + 1;
    }
}

void board_fault(void);

/* Every trap (mtvec, direct mode). The PLIC's claim/complete around the drain: a byte that
 * arrives after the last read keeps the UART's level up, and the PLIC raises it again. A
 * breakpoint is semihost()'s ebreak with semihosting off: resume after it (4 bytes, norvc). */
__attribute__((interrupt("machine"), aligned(4))) void board_trap(void)
{
    uint32_t cause, irq, pc;
    __asm__ volatile(ZICSR("csrr %0, mcause") : "=r"(cause));
    if (cause == MCAUSE_BREAKPOINT) {
        __asm__ volatile(ZICSR("csrr %0, mepc") : "=r"(pc));
        __asm__ volatile(ZICSR("csrw mepc, %0") :: "r"(pc + 4u));
        return;
    }
    if (cause != (MCAUSE_INTERRUPT | MCAUSE_MACHINE_EXTERNAL))
        board_fault();
    while ((irq = PLIC_CLAIM0) != 0) {
        if (irq == UART_IRQ)
            rx_drain();
        PLIC_CLAIM0 = irq;             /* complete */
    }
}

int board_read_byte(void)
{
    uint8_t b;
    CSR_CLEAR(mstatus, MSTATUS_MIE);
    for (;;) {
        rx_drain();                    /* never sleep with a byte waiting in the UART */
        if (rx_head != rx_tail)
            break;
        /* WFI wakes on a pending enabled interrupt even with mstatus.MIE clear; the trap is
         * taken once MIE is set again, so no byte can slip in between test and sleep. */
        __asm__ volatile(ZICSR("wfi\n csrs mstatus, %0\n csrc mstatus, %0") :: "r"(MSTATUS_MIE) : "memory");
    }
    b = rx_ring[rx_tail % RING];
    rx_tail = rx_tail + 1;
    UART_IER = IER_RX;                 /* room again (a no-op when it was on) */
    CSR_SET(mstatus, MSTATUS_MIE);
    return b;
}

void board_write(const uint8_t *p, size_t n)
{
    while (n--) {
        while (!(UART_LSR & LSR_THRE)) {
        }
        UART_THR = *p++;
    }
}

/* QEMU's exit status becomes `code` (its low 16 bits; a process status keeps 8 of them). */
void board_exit(int code)
{
    TEST_FINISHER = code == 0 ? FINISHER_PASS : ((uint32_t)code << 16) | FINISHER_FAIL;
    for (;;)
        __asm__ volatile("wfi");
}

/* Storage (board.h): BOARD_STORAGE_BYTES at BOARD_STORAGE_ADDR, the start of the RAM, which the
 * launcher backs with a file (QEMU -machine memory-backend=), so what the firmware writes there
 * is in that file at once, at the file's start as on mps2, and survives QEMU being killed.
 * riscv-virt.ld.S keeps the data memory out of it. A build without the defines has none. */
#ifdef BOARD_STORAGE_BYTES
#if BOARD_STORAGE_ADDR != 0x80000000u || BOARD_STORAGE_BYTES > 0x400000u
#error "the storage is the first 4 MiB of the RAM at most (riscv-virt.ld.S): BOARD_STORAGE_ADDR=0x80000000u"
#endif
uint32_t board_storage_size(void) { return BOARD_STORAGE_BYTES; }
const uint8_t *board_storage(void) { return (const uint8_t *)BOARD_STORAGE_ADDR; }
#else
uint32_t board_storage_size(void) { return 0; }
const uint8_t *board_storage(void) { return (const uint8_t *)0; }
#endif

/* virt has one UART, and it is the link. The trust signal goes out as a semihosting console
 * byte instead: QEMU writes it to the chardev named by -semihosting-config chardev=, which the
 * launcher's link broker (firmware_host/link_broker.py) reads as it reads mps2's UART1. Without
 * chardev= QEMU prints it on its stderr; with semihosting off it is lost (board_trap): on a board
 * nobody else can wait for, harmlessly either way. */
void board_link_trusted(void)
{
    trust_signal(TRUSTED_BYTE);
}

/* Any fault or unexpected trap: say so and exit with 127. */
void board_fault(void)
{
    static const uint8_t msg[] = "\r\n[board] fault\r\n";
    board_write(msg, sizeof msg - 1);
    board_exit(127);
}
