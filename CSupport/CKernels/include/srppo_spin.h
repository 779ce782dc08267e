// A spin-wait hint for the worker pool's short busy waits (Swift has no PAUSE intrinsic).
#ifndef SRPPO_SPIN_H
#define SRPPO_SPIN_H

static inline void srppo_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
