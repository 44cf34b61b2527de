/* Calls puts(), which a second preloaded library wraps. */
#include <stdio.h>
int main(void) { return puts("hello") < 0; }
