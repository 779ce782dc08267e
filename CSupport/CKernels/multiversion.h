// MULTIVERSION compiles a function for AVX-512, AVX2 and baseline x86-64; the loader picks one
// (an ifunc) for the CPU it runs on, so the binary runs anywhere without a global -march.
//
// Sanitizer builds get one baseline version: the ifunc resolver runs before the sanitizer runtime
// is initialized, and instrumenting it crashes the process at load time.
#ifndef SRPPO_MULTIVERSION_H
#define SRPPO_MULTIVERSION_H

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SRPPO_SANITIZED 1
#endif
#endif

#ifdef SRPPO_SANITIZED
#define MULTIVERSION
#else
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

#endif
