import Foundation
import Transformer

/// A deliberately naive float64 LLaMA forward over a model's named tensors: plain loops, no
/// packing, no BLAS, no shared code with the engine beyond reading parameters by name. The engine's
/// forward is checked against it.
struct NaiveLlama {
    let config: LlamaConfig
    let tensors: [String: [Double]]

    init(_ model: LlamaModel) {
        config = model.config
        var t: [String: [Double]] = [:]
        for tensor in model.layout.tensors {
            t[tensor.name] = (0..<tensor.count).map { Double(model.weights[tensor.offset + $0]) }
        }
        tensors = t
    }

    private func w(_ name: String) -> [Double] { tensors[name]! }

    /// y[out] = W[out, in] x[in] (+ b)
    private func matvec(_ weight: String, _ x: [Double], bias: String? = nil) -> [Double] {
        let W = w(weight)
        let n = W.count / x.count
        var y = [Double](repeating: 0, count: n)
        for o in 0..<n {
            var s = 0.0
            for i in 0..<x.count { s += W[o * x.count + i] * x[i] }
            y[o] = s + (bias.flatMap { tensors[$0] }?[o] ?? 0)
        }
        return y
    }

    private func rmsNorm(_ x: [Double], _ weight: String) -> [Double] {
        let ms = x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
        let r = 1 / (ms + config.rmsNormEps).squareRoot()
        return zip(x, w(weight)).map { $0 * r * $1 }
    }

    private func inverseFrequencies() -> [Double] {
        let e = config.headDim
        return (0..<e / 2).map { i -> Double in
            let f = 1 / pow(config.ropeTheta, Double(2 * i) / Double(e))
            switch config.ropeScaling {
            case nil: return f
            case let .linear(factor)?: return f / factor
            case let .llama3(factor, low, high, original)?:
                let wavelength = 2 * Double.pi / f
                if wavelength < Double(original) / high { return f }
                if wavelength > Double(original) / low { return f / factor }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
    }

    /// Rotate-half RoPE on each head of a vector.
    private func rope(_ x: [Double], heads: Int, position: Int) -> [Double] {
        let e = config.headDim, half = e / 2
        let inv = inverseFrequencies()
        var y = x
        for h in 0..<heads {
            for i in 0..<half {
                let a = Double(position) * inv[i]
                let x1 = x[h * e + i], x2 = x[h * e + half + i]
                y[h * e + i] = x1 * cos(a) - x2 * sin(a)
                y[h * e + half + i] = x2 * cos(a) + x1 * sin(a)
            }
        }
        return y
    }

    /// log softmax(logits / temperature) at each scored token.
    func logProbs(tokens: [Int32], firstScored: Int, temperature: Double = 1) -> [Double] {
        let c = config
        let d = c.hiddenSize, e = c.headDim
        let embedding = w("model.embed_tokens.weight")
        var xs = tokens.map { t in Array(embedding[Int(t) * d..<(Int(t) + 1) * d]) }
        for l in 0..<c.numLayers {
            let p = "model.layers.\(l)."
            var qs: [[Double]] = [], ks: [[Double]] = [], vs: [[Double]] = []
            for (pos, x) in xs.enumerated() {
                let n = rmsNorm(x, p + "input_layernorm.weight")
                qs.append(rope(matvec(p + "self_attn.q_proj.weight", n, bias: p + "self_attn.q_proj.bias"), heads: c.numHeads, position: pos))
                ks.append(rope(matvec(p + "self_attn.k_proj.weight", n, bias: p + "self_attn.k_proj.bias"), heads: c.numKVHeads, position: pos))
                vs.append(matvec(p + "self_attn.v_proj.weight", n, bias: p + "self_attn.v_proj.bias"))
            }
            for t in 0..<xs.count {
                var out = [Double](repeating: 0, count: c.qDim)
                for h in 0..<c.numHeads {
                    let g = h / (c.numHeads / c.numKVHeads)
                    var scores = (0...t).map { j in
                        (0..<e).reduce(0.0) { $0 + qs[t][h * e + $1] * ks[j][g * e + $1] } / Double(e).squareRoot()
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let z = scores.reduce(0, +)
                    for j in 0...t { for i in 0..<e { out[h * e + i] += scores[j] / z * vs[j][g * e + i] } }
                }
                let o = matvec(p + "self_attn.o_proj.weight", out, bias: p + "self_attn.o_proj.bias")
                xs[t] = zip(xs[t], o).map(+)
                let n = rmsNorm(xs[t], p + "post_attention_layernorm.weight")
                let gate = matvec(p + "mlp.gate_proj.weight", n), up = matvec(p + "mlp.up_proj.weight", n)
                let h = zip(gate, up).map { g, u in g / (1 + exp(-g)) * u }
                xs[t] = zip(xs[t], matvec(p + "mlp.down_proj.weight", h)).map(+)
            }
        }
        let head = c.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"
        return (firstScored..<tokens.count).map { i in
            let logits = matvec(head, rmsNorm(xs[i - 1], "model.norm.weight")).map { $0 / temperature }
            let m = logits.max()!
            let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
            return logits[Int(tokens[i])] - lse
        }
    }
}
