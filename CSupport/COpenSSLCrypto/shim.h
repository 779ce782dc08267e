// OpenSSL's libcrypto (libssl-dev): the EVP digest interface, used for the SHA-256 of weight images.
#include <openssl/evp.h>
