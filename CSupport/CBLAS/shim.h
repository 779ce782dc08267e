// OpenBLAS's CBLAS interface. Debian puts cblas.h under openblas-pthread/, found through pkg-config.
#include <cblas.h>
