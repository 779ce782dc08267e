import Compute

/// The keys and values of one sequence, every layer, for decoding it token by token.
///
/// Keys are stored after RoPE and transposed, [layer][G][e][capacity], so a single query's scores
/// vectorize over positions; values are [layer][G][capacity][e]. Grouped-query attention caches
/// only the G key/value heads. Capacity is fixed when the sequence starts (prompt + new tokens).
final class KVCache {
    let capacity: Int
    /// Positions 0..<length hold their keys and values.
    private(set) var length = 0
    let keys: AlignedBuffer<Float>
    let values: AlignedBuffer<Float>
    private let kvHeads: Int
    private let headDim: Int

    init(config: LlamaConfig, capacity: Int) {
        // A multiple of 16 keeps every transposed key row 64-byte aligned.
        self.capacity = (capacity + 15) / 16 * 16
        kvHeads = config.numKVHeads
        headDim = config.headDim
        keys = AlignedBuffer(count: config.numLayers * config.kvDim * self.capacity)
        values = AlignedBuffer(count: config.numLayers * config.kvDim * self.capacity)
    }

    /// Floats between consecutive key/value heads of a layer.
    var headStride: Int { headDim * capacity }

    func keys(layer: Int) -> UnsafeMutablePointer<Float> { keys.pointer + layer * kvHeads * headStride }
    func values(layer: Int) -> UnsafeMutablePointer<Float> { values.pointer + layer * kvHeads * headStride }

    /// Writes positions start..<start+count of one layer from rows of a fused qkv buffer
    /// ([count, qkvDim], row stride `ld`, k at `keyOffset` and v after it, as the forward leaves them).
    func store(layer: Int, positions start: Int, count: Int, qkv: UnsafePointer<Float>, ld: Int, keyOffset: Int) {
        precondition(start + count <= capacity, "KV cache of \(capacity) positions, writing up to \(start + count)")
        let e = headDim, kvDim = kvHeads * headDim
        let k = keys(layer: layer), v = values(layer: layer)
        for r in 0..<count {
            let row = qkv + r * ld + keyOffset
            let p = start + r
            for g in 0..<kvHeads {
                let kt = k + g * headStride + p
                for i in 0..<e { kt[i * capacity] = row[g * e + i] }
                (v + g * headStride + p * e).update(from: row + kvDim + g * e, count: e)
            }
        }
    }

    /// Marks positions ..<newLength as written (after every layer has stored them).
    func advance(to newLength: Int) {
        precondition(newLength <= capacity)
        length = newLength
    }
}
