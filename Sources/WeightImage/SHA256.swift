import COpenSSLCrypto

/// SHA-256 through OpenSSL's libcrypto (SHA-NI accelerated where the CPU has it).
public enum SHA256 {
    /// Lowercase hex digest of `bytes`.
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        defer { EVP_MD_CTX_free(context) }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        // These only fail on allocation failure or a broken libcrypto install.
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1,
              EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1,
              EVP_DigestFinal_ex(context, &digest, &length) == 1 else {
            fatalError("libcrypto SHA-256 failed")
        }
        return digest[0..<Int(length)].map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}
