// libhugetlbfs, loaded at run time with dlopen("libhugetlbfs.so.0") so that srppo runs on machines
// without it. Used only where it knows more than /sys and /proc tell directly: the huge page sizes the
// kernel offers and where a hugetlbfs of a given size is mounted. Every function reports "unknown"
// (-1 or NULL) when the library is missing.
#ifndef SRPPO_HUGETLBFS_H
#define SRPPO_HUGETLBFS_H

// 1 when libhugetlbfs.so.0 could be loaded and has the functions below, else 0.
int srppo_hugetlbfs_available(void);

// The default huge page size in bytes (gethugepagesize), or -1.
long srppo_hugetlbfs_default_page_size(void);

// Up to `max` huge page sizes in bytes (gethugepagesizes); returns how many, or -1.
int srppo_hugetlbfs_page_sizes(long *sizes, int max);

// The mount point of a hugetlbfs for `page_size` (hugetlbfs_find_path_for_size), or NULL when the
// library is missing or nothing is mounted for that size.
const char *srppo_hugetlbfs_mount_for_size(long page_size);

#endif
