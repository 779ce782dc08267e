import Reward
import WireProtocol

/// Consecutive groups of requests of at most `maxTokens` tokens and `maxItems` requests (a request
/// longer than `maxTokens` forms a group alone): `consecutiveRanges` over their lengths.
func consecutiveChunks(_ requests: [TokenPair], maxTokens: Int, maxItems: Int = .max) -> [ArraySlice<TokenPair>] {
    consecutiveRanges(requests.map { $0.prompt.count + $0.response.count }, maxTokens: maxTokens, maxItems: maxItems)
        .map { requests[$0] }
}
