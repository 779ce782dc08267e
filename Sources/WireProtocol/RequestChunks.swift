/// Consecutive index ranges of `sizes` (token counts of items, in order) whose items number at most
/// `maxItems` and hold at most `maxTokens` tokens together; an item longer than `maxTokens` forms a
/// range alone. Clients split their work into requests this way, and the daemon streams a large
/// `/get_reward` batch through its scheduler in the same pieces.
public func consecutiveRanges(_ sizes: [Int], maxTokens: Int, maxItems: Int = .max) -> [Range<Int>] {
    var ranges: [Range<Int>] = []
    var start = 0, tokens = 0
    for (i, n) in sizes.enumerated() {
        if i > start && (tokens + n > maxTokens || i - start == maxItems) {
            ranges.append(start..<i)
            start = i
            tokens = 0
        }
        tokens += n
    }
    if start < sizes.count { ranges.append(start..<sizes.count) }
    return ranges
}
