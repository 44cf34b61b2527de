/* Entry points of the loaded libcuda as libcuda itself defines them, read from its own .dynsym (dlsym would find the
 * shim's wrappers when the shim is preloaded): what the GPU benches compare the shim's path against, in one process.
 * Used by launch_ab.c and window_ab.c. */
#ifndef TG_BENCH_LIBCUDA_SYMBOLS_H
#define TG_BENCH_LIBCUDA_SYMBOLS_H
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct found { const char *want; void *addr; };

/* Looks `want` up in the .dynsym of the loaded libcuda, reading the file itself (dlsym would be the shim's). */
static int find_in_libcuda(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    struct found *f = arg;
    if (!strstr(info->dlpi_name, "libcuda.so")) return 0;
    int fd = open(info->dlpi_name, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return 0;
    const unsigned char *base = mmap(0, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED) return 0;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM) continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
        const char *str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
        for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++)
            if (sym[k].st_value && !strcmp(str + sym[k].st_name, f->want)) f->addr = (void *)(info->dlpi_addr + sym[k].st_value);
    }
    return f->addr != 0;
}

/* libcuda's own `name`; exits 2 saying so (as `program`) when its symbol table has none. */
static inline void *libcuda_symbol(const char *program, const char *name) {
    struct found f = {name, 0};
    dl_iterate_phdr(find_in_libcuda, &f);
    if (!f.addr) {
        fprintf(stderr, "%s: %s not found in libcuda's symbol table\n", program, name);
        exit(2);
    }
    return f.addr;
}

#endif
