#include "srppo_hugetlbfs.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

// Signatures as documented in hugetlbfs.h (declared here so building needs no libhugetlbfs-dev).
static long (*default_page_size)(void);
static int (*page_sizes)(long pagesizes[], int n_elem);
static const char *(*mount_for_size)(long page_size);

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded;

static void load(void) {
    void *library = dlopen("libhugetlbfs.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!library) return;
    default_page_size = (long (*)(void))dlsym(library, "gethugepagesize");
    page_sizes = (int (*)(long[], int))dlsym(library, "gethugepagesizes");
    mount_for_size = (const char *(*)(long))dlsym(library, "hugetlbfs_find_path_for_size");
    loaded = default_page_size && page_sizes && mount_for_size;
}

int srppo_hugetlbfs_available(void) {
    pthread_once(&load_once, load);
    return loaded;
}

long srppo_hugetlbfs_default_page_size(void) {
    return srppo_hugetlbfs_available() ? default_page_size() : -1;
}

int srppo_hugetlbfs_page_sizes(long *sizes, int max) {
    return srppo_hugetlbfs_available() ? page_sizes(sizes, max) : -1;
}

const char *srppo_hugetlbfs_mount_for_size(long page_size) {
    return srppo_hugetlbfs_available() ? mount_for_size(page_size) : NULL;
}
