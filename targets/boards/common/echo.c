/* Board test firmware for any port (board.h): proves the UART both ways, the RX interrupt, WFI
 * and the exit code. Every byte received comes back plus one (mod 256), except the sentinel
 * 0x00: the byte after it is the exit code, and the firmware answers "BYE" and exits with that
 * code. The +1 goes through a volatile float: on a Cortex-M with an FPU it faults (exit 127)
 * unless the reset code enabled it (CPACR); on RV32IMAC, which has none, it is libgcc's. */
#include "../../firmware/board.h"

int main(void)
{
    static const uint8_t hello[] = "ECHO";
    static const uint8_t bye[] = "BYE";
    volatile float one = 1.0f;
    board_init();
    board_write(hello, sizeof hello - 1);
    for (;;) {
        int c = board_read_byte();
        if (c == 0) {
            int code = board_read_byte();
            board_write(bye, sizeof bye - 1);
            board_exit(code);
        } else {
            uint8_t out = (uint8_t)(int)((float)c * one + one);
            board_write(&out, 1);
        }
    }
}
