/* Board support for the STM32F405 (QEMU netduinoplus2, Cortex-M4F), behind the firmware's board
 * interface (targets/firmware/board.h), on the chip's own registers (ST RM0090):
 *   USART1 (PA9 TX, PA10 RX, AF7): the link. RX by its interrupt (IRQ 37, through the NVIC) into a
 *          ring buffer, WFI while it is empty; TX polls TXE.
 *   USART2 (PA2 TX, AF7): TX only, the link broker's trust signal (board_link_trusted).
 *   RCC:   the GPIOA, USART1 and USART2 clocks. The core runs on the 16 MHz HSI of reset.
 * QEMU 7.2 wires its first -serial to USART1 and the second to USART2 (measured: a probe that
 * writes one byte to each of the six USARTs). QEMU does not model RCC or GPIO (their writes are
 * ignored) but a real chip needs them.
 *
 * Storage: QEMU's STM32F405 flash is ROM (its flash controller is not modelled) and the machine
 * takes no memory backend, so the storage is a mirror in SRAM, filled at boot from a host file
 * and written through to it by semihosting (SYS_OPEN/SEEK/WRITE): durable across QEMU restarts.
 * The launcher names the file as the semihosting command line "storage=PATH". There is room for
 * the key and boot records (BOARD_STORAGE_BYTES = EL_ST_CKPT_AT), not for two checkpoint slots
 * beside two model areas in 128 KiB: the firmware then reports itself not durable and keeps
 * learning without checkpoints. A real chip keeps it in flash sectors (docs/porting.md). */
#include "../../firmware/board.h"
#include "../cortex-m/semihosting.h"

void board_storage_written(uint32_t offset, uint32_t n);   /* common/memory_storage.c calls it */

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define RCC_APB2ENR REG(0x40023844u)
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_AFRL REG(0x40020020u)
#define GPIOA_AFRH REG(0x40020024u)

#define USART1 0x40011000u
#define USART2 0x40004400u
#define SR(u) REG((u) + 0x00u)
#define DR(u) REG((u) + 0x04u)
#define BRR(u) REG((u) + 0x08u)
#define CR1(u) REG((u) + 0x0Cu)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_UE (1u << 13)
#define CR1_RXNEIE (1u << 5)
#define CR1_TE (1u << 3)
#define CR1_RE (1u << 2)
#define BRR_115200 0x8Bu               /* 16 MHz / (16 * 8.6875) */

#define NVIC_ISER1 REG(0xE000E104u)
#define NVIC_ICER1 REG(0xE000E184u)
#define USART1_BIT (1u << (37 - 32))

#define BOOTED_BYTE 0x42u              /* 'B', once, from board_init */
#define TRUSTED_BYTE 0x54u             /* 'T', per authenticated request */

#define RING 256u                      /* a power of two */
static volatile uint8_t rx_ring[RING];
static volatile uint32_t rx_head, rx_tail;   /* head: written by the IRQ; tail: by the reader */

static void storage_open(void);

void board_init(void)
{
    rx_head = rx_tail = 0;
    RCC_AHB1ENR |= 1u;                 /* GPIOA */
    RCC_APB1ENR |= 1u << 17;           /* USART2 */
    RCC_APB2ENR |= 1u << 4;            /* USART1 */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4 | 0xFu << 18)) | 0xAu << 4 | 0xAu << 18;   /* PA2,3,9,10: AF */
    GPIOA_AFRL = (GPIOA_AFRL & ~0xFF00u) | 0x7700u;
    GPIOA_AFRH = (GPIOA_AFRH & ~0xFF0u) | 0x770u;
    BRR(USART1) = BRR_115200;
    CR1(USART1) = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
    BRR(USART2) = BRR_115200;
    CR1(USART2) = CR1_UE | CR1_TE;     /* no interrupts: nothing is read from USART2 */
    NVIC_ISER1 = USART1_BIT;
    storage_open();
    DR(USART2) = BOOTED_BYTE;          /* up: the broker announces the board's port */
    __asm__ volatile("cpsie i" ::: "memory");
}

/* Drain USART1 into the ring. When the ring is full the interrupt is disabled in the NVIC (not
 * in CR1: the line stays raised while RXNE is set, QEMU's model included) and the byte stays in
 * the USART, which QEMU then holds the rest back behind: nothing is dropped. */
static void rx_drain(void)
{
    while (SR(USART1) & SR_RXNE) {
        if (rx_head - rx_tail >= RING) {
            NVIC_ICER1 = USART1_BIT;
            return;
        }
        rx_ring[rx_head % RING] = (uint8_t)DR(USART1);
        rx_head = rx_head + 1;
    }
}

void board_usart1_irq(void)
{
    rx_drain();
}

int board_read_byte(void)
{
    uint8_t b;
    __asm__ volatile("cpsid i" ::: "memory");
    for (;;) {
        rx_drain();                    /* never sleep with a byte waiting in the USART */
        if (rx_head != rx_tail)
            break;
        /* WFI wakes on a pending interrupt even with PRIMASK set; the handler runs once
         * interrupts are enabled again, so no byte can slip in between test and sleep. */
        __asm__ volatile("wfi\n cpsie i\n cpsid i" ::: "memory");
    }
    b = rx_ring[rx_tail % RING];
    rx_tail = rx_tail + 1;
    NVIC_ISER1 = USART1_BIT;           /* room again (a no-op when it was enabled) */
    __asm__ volatile("cpsie i" ::: "memory");
    return b;
}

void board_write(const uint8_t *p, size_t n)
{
    while (n--) {
        while (!(SR(USART1) & SR_TXE)) {
        }
        DR(USART1) = *p++;
    }
}

/* UART0's counterpart on mps2 (targets/boards/mps2/board.c says why the broker needs it). Never
 * waits: when USART2 is busy the signal is dropped, the next request sends one. */
void board_link_trusted(void)
{
    if (SR(USART2) & SR_TXE)
        DR(USART2) = TRUSTED_BYTE;
}

/* -- storage: the SRAM mirror of the host file (the header comment says why) ------------------ */
#ifdef BOARD_STORAGE_BYTES
static uint8_t mirror[BOARD_STORAGE_BYTES] __attribute__((aligned(8)));
static int32_t storage_fd = -1;

static void storage_open(void)
{
    static const char prefix[] = "storage=";
    char line[512];
    volatile uint32_t args[3];
    uint32_t i, n;
    args[0] = (uint32_t)(uintptr_t)line;
    args[1] = sizeof line;
    if (semihost(SH_GET_CMDLINE, args) != 0) return;
    n = args[1];
    for (i = 0; i + 1 < sizeof prefix; i++)
        if (i >= n || line[i] != prefix[i]) return;   /* no storage file given */
    args[0] = (uint32_t)(uintptr_t)(line + sizeof prefix - 1);
    args[1] = 3;                       /* "r+b": the launcher made the file */
    args[2] = n - (sizeof prefix - 1);
    storage_fd = (int32_t)semihost(SH_OPEN, args);
    if (storage_fd < 0) return;
    args[0] = (uint32_t)storage_fd;
    args[1] = (uint32_t)(uintptr_t)mirror;
    args[2] = sizeof mirror;
    if (semihost(SH_READ, args) != 0)  /* the bytes not read: a short file is no storage */
        storage_fd = -1;
}

/* After every erase and program (common/memory_storage.c changes the mirror): [offset, offset + n)
 * of the mirror through to the file. */
void board_storage_written(uint32_t offset, uint32_t n)
{
    volatile uint32_t args[3];
    if (storage_fd < 0) return;
    args[0] = (uint32_t)storage_fd;
    args[1] = offset;
    if (semihost(SH_SEEK, args) != 0) return;
    args[0] = (uint32_t)storage_fd;
    args[1] = (uint32_t)(uintptr_t)(mirror + offset);
    args[2] = n;
    (void)semihost(SH_WRITE, args);
}

uint32_t board_storage_size(void) { return storage_fd >= 0 ? BOARD_STORAGE_BYTES : 0u; }
const uint8_t *board_storage(void) { return mirror; }
#else
/* A build without storage (test firmware). */
static void storage_open(void) {}
uint32_t board_storage_size(void) { return 0; }
const uint8_t *board_storage(void) { return (const uint8_t *)0; }
#endif
