import Compute
#if canImport(Glibc)
import Glibc
#endif

/// Which precision the scoring forward multiplies the frozen weights in.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// fp32 weights through OpenBLAS sgemm (the reference path; what training uses).
    case f32
    /// bf16 copies of the embedding, projection and LM-head weights through the bf16 GEMM
    /// (`vdpbf16ps` with fp32 accumulation, or the portable C kernel): embedding rows are the bf16
    /// values, activations are rounded to bf16 at each product, sums stay fp32. Norms, biases, RoPE,
    /// attention, SwiGLU and the log-softmax stay fp32. On a model that has fp32 weights too, this
    /// applies to the scoring forward (`logProbs`, `headInputs`) only; generation and training use
    /// fp32. A model on a bf16 weight image has nothing else: it generates in bf16 too, and trains
    /// LoRA adapters over its bf16 base (forward in bf16; backward through the unpacked bf16 values).
    case bf16
}

/// bf16 packed copies of a model's matrix weights: the token embedding, the seven projections of
/// every layer (as the fused groups qkv, o, gate+up, down) and the LM head (the embedding itself when
/// tied), as views of one region laid out as `BF16ImageLayout`: packed here, or a mapped bf16 weight
/// image. Norms and biases keep reading the fp32 parameters.
public final class BF16Weights: @unchecked Sendable {
    struct Layer {
        let qkv, o, gateUp, down: BF16Matrix
    }

    let layers: [Layer]
    /// [V, d]; embedding lookups copy its rows (`BF16Matrix.copyRow`).
    let embedding: BF16Matrix
    /// [V, d]; the same matrix as `embedding` when the model ties them.
    let lmHead: BF16Matrix

    /// Views of the matrices packed in `region` (laid out as `layout`); `owner` keeps it alive.
    init(region: UnsafeRawPointer, layout: BF16ImageLayout, owner: AnyObject) {
        func view(_ m: BF16ImageLayout.Matrix) -> BF16Matrix {
            BF16Matrix(packed: (region + m.offset).assumingMemoryBound(to: UInt16.self), rows: m.rows, columns: m.columns, owner: owner)
        }
        layers = layout.layers.map { Layer(qkv: view($0.qkv), o: view($0.o), gateUp: view($0.gateUp), down: view($0.down)) }
        embedding = view(layout.embedding)
        lmHead = layout.config.tieWordEmbeddings ? embedding : view(layout.lmHead)
    }

    /// Packs the current fp32 weights of `model` into a region of its own, exactly as a bf16 weight
    /// image holds them (a snapshot: later changes to the fp32 parameters are not seen, so this is
    /// for frozen models).
    convenience init(packing model: LlamaModel) {
        let layout = BF16ImageLayout(config: model.config)
        let region = AlignedBuffer<UInt8>(count: layout.byteCount)
        layout.write(model, into: region.pointer)
        self.init(region: region.pointer, layout: layout, owner: region)
    }

    /// Writes every matrix as fp32 (the bf16 values, exactly) at its place in a `LlamaLayout`
    /// parameter buffer: the base a LoRA model on a bf16 image merges its adapters into.
    func unpack(into w: UnsafeMutablePointer<Float>, layout: LlamaLayout) {
        for (matrices, offsets) in zip(layers, layout.layers) {
            matrices.qkv.unpack(into: w + offsets.qkv)
            matrices.o.unpack(into: w + offsets.o)
            matrices.gateUp.unpack(into: w + offsets.gateUp)
            matrices.down.unpack(into: w + offsets.down)
        }
        embedding.unpack(into: w + layout.embedding)
        if lmHead !== embedding { lmHead.unpack(into: w + layout.lmHead) }
    }

    func matrix(_ group: ProjectionGroup, layer: Int) -> BF16Matrix {
        let l = layers[layer]
        switch group {
        case .qkv: return l.qkv
        case .o: return l.o
        case .gateUp: return l.gateUp
        case .down: return l.down
        }
    }
}

/// How a frozen model's parameters sit in one region for bf16 scoring (the data of a bf16 weight
/// image): first the fp32 vectors (norms, biases) in `LlamaLayout` order, then the packed bf16
/// matrices — per layer qkv, o, gate+up, down, then the embedding and, when not tied, the LM head.
/// Every entry starts on a 64-byte boundary; the gaps are zeros. The fp32 matrices are not stored:
/// a model on such a region scores in bf16 only (about half the bytes of the fp32 layout).
public struct BF16ImageLayout: Sendable {
    /// One stored array: `offset` in bytes from the region's start.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        /// true: bf16 in `BF16Matrix`'s packed panel layout; false: fp32, row-major.
        public let packed: Bool
    }

    /// A packed matrix W[rows, columns]: its offset here (bytes) and in the `LlamaLayout` buffer (floats).
    struct Matrix: Sendable {
        let offset, parameterOffset, rows, columns: Int
    }

    struct LayerMatrices: Sendable {
        let qkv, o, gateUp, down: Matrix
    }

    public let config: LlamaConfig
    public let entries: [Entry]
    /// Bytes of the region, padding included.
    public let byteCount: Int
    /// fp32 vectors: (offset in the `LlamaLayout` buffer in floats, offset here in bytes, floats).
    let vectors: [(parameterOffset: Int, offset: Int, count: Int)]
    let layers: [LayerMatrices]
    let embedding: Matrix
    /// The same as `embedding` when tied.
    let lmHead: Matrix

    public init(config c: LlamaConfig) {
        let parameters = LlamaLayout(config: c)
        var entries: [Entry] = []
        var next = 0
        func place(_ name: String, _ shape: [Int], packed: Bool) -> Int {
            let offset = next
            entries.append(Entry(name: name, shape: shape, offset: offset, packed: packed))
            let bytes = packed ? BF16Matrix.packedCount(rows: shape[0], columns: shape[1]) * 2 : shape.reduce(1, *) * 4
            next = (next + bytes + 63) / 64 * 64
            return offset
        }
        func matrix(_ name: String, _ parameterOffset: Int, _ rows: Int, _ columns: Int) -> Matrix {
            Matrix(offset: place(name, [rows, columns], packed: true), parameterOffset: parameterOffset, rows: rows, columns: columns)
        }
        // Norms and biases: the one-dimensional tensors.
        vectors = parameters.tensors.filter { $0.shape.count == 1 }.map { t in
            (t.offset, place(t.name, t.shape, packed: false), t.count)
        }
        layers = parameters.layers.enumerated().map { i, layer in
            let p = "model.layers.\(i)."
            return LayerMatrices(qkv: matrix(p + "self_attn.qkv_proj.weight", layer.qkv, c.qkvDim, c.hiddenSize),
                                 o: matrix(p + "self_attn.o_proj.weight", layer.o, c.hiddenSize, c.qDim),
                                 gateUp: matrix(p + "mlp.gate_up_proj.weight", layer.gateUp, 2 * c.intermediateSize, c.hiddenSize),
                                 down: matrix(p + "mlp.down_proj.weight", layer.down, c.hiddenSize, c.intermediateSize))
        }
        embedding = matrix("model.embed_tokens.weight", parameters.embedding, c.vocabSize, c.hiddenSize)
        lmHead = c.tieWordEmbeddings ? embedding : matrix("lm_head.weight", parameters.lmHead, c.vocabSize, c.hiddenSize)
        config = c
        self.entries = entries
        byteCount = next
    }

    /// Writes `model`'s parameters into `region` (`byteCount` bytes, zeroed by the caller): the same
    /// bytes for the same weights on every machine, so a bf16 image has a reproducible hash, and the
    /// bytes `weightPrecision = .bf16` multiplies, so a model on an image scores bit for bit like the
    /// in-process bf16 model.
    public func write(_ model: LlamaModel, into region: UnsafeMutableRawPointer) {
        precondition(model.config == config, "the model's config differs from the layout's")
        precondition(model.hasFP32Matrices, "packing needs the fp32 weights")
        let w = model.weights
        for v in vectors {
            (region + v.offset).assumingMemoryBound(to: Float.self).update(from: w + v.parameterOffset, count: v.count)
        }
        let matrices = layers.flatMap { [$0.qkv, $0.o, $0.gateUp, $0.down] } + (config.tieWordEmbeddings ? [embedding] : [embedding, lmHead])
        for m in matrices {
            BF16Matrix.pack(w + m.parameterOffset, rows: m.rows, columns: m.columns, into: (region + m.offset).assumingMemoryBound(to: UInt16.self))
        }
    }
}

extension LlamaModel {
    /// The bf16 matrices when they are the model's only weights (a bf16 weight image): then every
    /// product multiplies them — generation's and training's too; nil for a model with fp32 weights,
    /// whatever its scoring precision.
    var bf16Only: BF16Weights? { hasFP32Matrices ? nil : bf16Weights }

    /// The precision the scoring forward (`logProbs`, `headInputs`) uses for its matrix products.
    /// Setting `.bf16` packs the current weights once (about 0.2 s for SmolLM2); the model must then
    /// be treated as frozen (training refuses it). A model on a bf16 image (`hasFP32Matrices` false)
    /// is bf16 for good.
    public var weightPrecision: WeightPrecision {
        get { bf16Weights == nil ? .f32 : .bf16 }
        set {
            switch newValue {
            case .f32:
                precondition(hasFP32Matrices, "this model runs on a bf16 weight image: it has no fp32 weights to go back to")
                bf16Weights = nil
            case .bf16: if bf16Weights == nil { bf16Weights = BF16Weights(packing: self) }
            }
        }
    }

    /// A frozen model on a region laid out as `BF16ImageLayout(config:)` (a mapped bf16 weight image):
    /// the matrices are used where they lie; the fp32 vectors are copied into a parameter buffer of
    /// the usual layout whose matrix parts are never touched, so they cost address space but no
    /// memory. Scores exactly like the in-process model with `weightPrecision = .bf16`; generates in
    /// bf16; trains only adapters (the base has no fp32 values to update).
    public convenience init(config: LlamaConfig, bf16Region region: UnsafeRawPointer, owner: AnyObject) {
        let layout = BF16ImageLayout(config: config)
        let storage = UntouchedParameterBuffer(floatCount: LlamaLayout(config: config).parameterCount)
        for v in layout.vectors {
            (storage.floats + v.parameterOffset).update(from: (region + v.offset).assumingMemoryBound(to: Float.self), count: v.count)
        }
        self.init(config: config, storage: storage)
        bf16Weights = BF16Weights(region: region, layout: layout, owner: owner)
        hasFP32Matrices = false
    }
}

/// Zero-filled parameter memory from an anonymous mapping: pages cost memory only once written, so a
/// bf16-image model's fp32 buffer holds its few vectors and nothing else.
final class UntouchedParameterBuffer: ParameterStorage {
    let floats: UnsafeMutablePointer<Float>
    let floatCount: Int
    private let bytes: Int

    init(floatCount: Int) {
        bytes = max(floatCount * 4, 1)
        guard let base = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              base != MAP_FAILED else {
            fatalError("out of address space reserving \(bytes) bytes")
        }
        floats = base.bindMemory(to: Float.self, capacity: floatCount)
        self.floatCount = floatCount
    }

    deinit { munmap(floats, bytes) }
}
