/* Board support for QEMU mps2-an386 (Cortex-M4F) and mps2-an500 (Cortex-M7): the CMSDK
 * APB UART0 (TX polled, RX by IRQ 0 into a ring buffer, WFI while it is empty), UART1 (TX
 * only: one byte per authenticated request, board_link_trusted), SysTick as a 64-bit tick
 * counter and the storage in the PSRAM. The reset handler, semihosting exit, fault handler and
 * memset/memcpy/memmove are every Cortex-M port's (targets/boards/cortex-m). */
#include "board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

/* CMSDK APB UART0 (DESIGN.md §5) */
#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00)
#define UART_STATE REG(UART0 + 0x04)   /* bit0 TX full, bit1 RX full */
#define UART_CTRL REG(UART0 + 0x08)    /* bit0 TX en, bit1 RX en, bit3 RX irq en */
#define UART_INTCLEAR REG(UART0 + 0x0C)
#define UART_BAUDDIV REG(UART0 + 0x10)
#define STATE_TX_FULL 1u
#define STATE_RX_FULL 2u
#define CTRL_TX_EN 1u
#define CTRL_RX_EN 2u
#define CTRL_RX_IRQ 8u
#define INT_RX 2u

/* CMSDK APB UART1: the link's trust signal (board_link_trusted), TX only */
#define UART1 0x40005000u
#define UART1_DATA REG(UART1 + 0x00)
#define UART1_STATE REG(UART1 + 0x04)
#define UART1_CTRL REG(UART1 + 0x08)
#define UART1_BAUDDIV REG(UART1 + 0x10)
#define BOOTED_BYTE 0x42u              /* 'B', once, from board_init */
#define TRUSTED_BYTE 0x54u             /* 'T', per authenticated request */

/* System control space */
#define NVIC_ISER0 REG(0xE000E100u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_ICSR REG(0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)

#define RING 256u                      /* a power of two */
static volatile uint8_t rx_ring[RING];
static volatile uint32_t rx_head, rx_tail;   /* head: written by the IRQ; tail: by the reader */
static volatile uint32_t systick_wraps;

void board_init(void)
{
    rx_head = rx_tail = 0;
    UART_BAUDDIV = 16;                 /* the smallest divider the CMSDK UART accepts */
    UART_INTCLEAR = 0xF;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_IRQ;
    NVIC_ISER0 = 1u << 0;              /* IRQ 0: UART0 RX */
    UART1_BAUDDIV = 16;
    UART1_CTRL = CTRL_TX_EN;           /* no interrupts: nothing is read from UART1 */
    UART1_DATA = BOOTED_BYTE;          /* up: the broker announces the board's port */

    systick_wraps = 0;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u;                     /* enable, interrupt on wrap, core clock */
    __asm__ volatile("cpsie i" ::: "memory");
}

/* Drain the UART into the ring. When the ring is full the RX interrupt is masked and the
 * byte stays in the UART: QEMU then holds the rest back, so nothing is ever dropped. The
 * interrupt is cleared BEFORE draining: a byte arriving after the last read raises it again. */
static void rx_drain(void)
{
    UART_INTCLEAR = INT_RX;
    while (UART_STATE & STATE_RX_FULL) {
        if (rx_head - rx_tail >= RING) {
            UART_CTRL &= ~CTRL_RX_IRQ;
            return;
        }
        rx_ring[rx_head % RING] = (uint8_t)UART_DATA;
        rx_head = rx_head + 1;
    }
}

void board_uart0_rx_irq(void)
{
    rx_drain();
}

int board_read_byte(void)
{
    uint8_t b;
    __asm__ volatile("cpsid i" ::: "memory");
    for (;;) {
        rx_drain();                    /* never sleep with a byte waiting in the UART */
        if (rx_head != rx_tail)
            break;
        /* WFI wakes on a pending interrupt even with PRIMASK set; the handler runs once
         * interrupts are enabled again, so no byte can slip in between test and sleep. */
        __asm__ volatile("wfi\n cpsie i\n cpsid i" ::: "memory");
    }
    b = rx_ring[rx_tail % RING];
    rx_tail = rx_tail + 1;
    if (!(UART_CTRL & CTRL_RX_IRQ))
        UART_CTRL |= CTRL_RX_IRQ;      /* room again */
    __asm__ volatile("cpsie i" ::: "memory");
    return b;
}

void board_write(const uint8_t *p, size_t n)
{
    while (n--) {
        while (UART_STATE & STATE_TX_FULL) {
        }
        UART_DATA = *p++;
    }
}

void board_systick_irq(void)
{
    systick_wraps = systick_wraps + 1;
}

uint64_t board_ticks(void)
{
    uint32_t hi, v;
    __asm__ volatile("cpsid i" ::: "memory");
    hi = systick_wraps;
    v = SYST_CVR;
    if (SCB_ICSR & ICSR_PENDSTSET) {   /* wrapped, handler not yet run */
        v = SYST_CVR;
        hi++;
    }
    __asm__ volatile("cpsie i" ::: "memory");
    return ((uint64_t)hi << 24) + (0x00FFFFFFu - v);
}

/* Storage (board.h): BOARD_STORAGE_BYTES at BOARD_STORAGE_ADDR in the PSRAM, which the launcher
 * backs with a file (QEMU -machine memory-backend=, firmware_host/qemu.py), so what the firmware
 * writes there is in that file at once and survives QEMU being killed. A build without the
 * defines (the echo and runtime firmware) has no storage. Erasing and programming it:
 * targets/boards/common/memory_storage.c. */
#ifdef BOARD_STORAGE_BYTES
uint32_t board_storage_size(void) { return BOARD_STORAGE_BYTES; }
const uint8_t *board_storage(void) { return (const uint8_t *)BOARD_STORAGE_ADDR; }
#else
uint32_t board_storage_size(void) { return 0; }
const uint8_t *board_storage(void) { return (const uint8_t *)0; }
#endif

/* UART0 is QEMU's chardev, which cannot hand itself to another client; the launcher's link
 * broker (firmware_host/link_broker.py) owns it and serves the port clients connect to, with the
 * native board's policy: a waiting client gets the link once the current one has gone the grace
 * period without an authenticated request. This byte on UART1 tells the broker of each one. On a
 * real board (one wire, nobody else can wait for it) or with nothing behind UART1 it is lost,
 * harmlessly. Never waits: when UART1 is full the signal is dropped, the next request sends one. */
void board_link_trusted(void)
{
    if (!(UART1_STATE & STATE_TX_FULL))
        UART1_DATA = TRUSTED_BYTE;
}
