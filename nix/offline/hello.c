/* The offline package set's dynamically linked test program. */
#include <stdio.h>

int main(void) {
    puts("Hello, world!");
    return 0;
}
