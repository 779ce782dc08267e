import Reward

/// Consecutive groups of requests of at most `maxTokens` tokens and `maxItems` requests (a request
/// longer than `maxTokens` forms a group alone).
func consecutiveChunks(_ requests: [RewardRequest], maxTokens: Int, maxItems: Int = .max) -> [ArraySlice<RewardRequest>] {
    var chunks: [ArraySlice<RewardRequest>] = []
    var start = 0, tokens = 0
    for (i, request) in requests.enumerated() {
        let n = request.prompt.count + request.response.count
        if i > start && (tokens + n > maxTokens || i - start == maxItems) {
            chunks.append(requests[start..<i])
            start = i
            tokens = 0
        }
        tokens += n
    }
    if start < requests.count { chunks.append(requests[start...]) }
    return chunks
}
