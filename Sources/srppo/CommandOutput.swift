import Dispatch
import Foundation
import WeightImage

// What the image commands print: JSON values of library structs, wall-clock seconds.

/// JSON value of an Encodable (for JSONLines.Writer, which takes dictionaries).
func jsonObject<T: Encodable>(_ value: T) -> Any {
    // Encoding the plain structs of WeightImage cannot fail.
    try! JSONSerialization.jsonObject(with: JSONEncoder().encode(value))
}

/// Loads a checkpoint (GGUF, safetensors, Hugging Face folder) or an image file into a sealed image.
func buildImage(name: String, path: String, dtype: WeightDType?, hugePages: HugePagePolicy) throws -> (image: WeightImage, seconds: Double) {
    let start = DispatchTime.now()
    let image = try WeightImage.load(name: name, path: path, dtype: dtype, hugePages: hugePages)
    return (image, elapsed(since: start))
}

func elapsed(since start: DispatchTime) -> Double {
    seconds(from: start, to: .now())
}

func seconds(from start: DispatchTime, to end: DispatchTime) -> Double {
    Double(end.uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

/// The report line of a built image.
func imageReport(_ image: WeightImage, seconds: Double) -> [String: Any] {
    let stats = image.statistics
    return [
        "name": image.name, "sha256": image.manifest.sha256, "dtype": image.manifest.dtype.rawValue,
        "data_bytes": image.manifest.dataBytes, "memory_bytes": image.memoryBytes,
        "backing": jsonObject(image.backing), "backing_summary": image.backing.summary,
        "seconds": seconds, "fill_seconds": stats.fillSeconds, "hash_seconds": stats.hashSeconds,
        "hash_mb_per_s": stats.hashBytesPerSecond / 1e6,
    ]
}
