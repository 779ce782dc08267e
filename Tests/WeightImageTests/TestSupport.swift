import CLinux
import Foundation
import Compute
import TestSupport
import Transformer
import WeightImage
import XCTest

/// A small LLaMA (separate LM head) with seeded random weights: enough to exercise layout, images and
/// scoring quickly.
func tinyModel(seed: UInt64 = 1) -> LlamaModel {
    let config = LlamaConfig(vocabSize: 97, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKVHeads: 2,
                             maxPositions: 64, tieWordEmbeddings: false)
    return TinyModels.model(config, seed: seed)
}

let tinyRequests = [ScoringRequest(tokens: [1, 5, 9, 13, 2, 7], firstScored: 2),
                    ScoringRequest(tokens: [3, 96, 0, 44], firstScored: 1)]

/// errno of a raw mmap of `fd`, or 0 when it succeeded (the mapping is removed again).
func mmapErrno(_ fd: Int32, bytes: Int, protection: Int32, flags: Int32) -> Int32 {
    guard let base = mmap(nil, bytes, protection, flags, fd, 0), base != MAP_FAILED else { return errno }
    munmap(base, bytes)
    return 0
}

/// The encoding of an error for comparisons in messages.
func describe(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}
