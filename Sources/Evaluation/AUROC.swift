/// The area under the ROC curve of a score that should rank `positives` above `negatives`: the
/// probability that a random positive scores higher than a random negative, ties counting half
/// (the Mann–Whitney U statistic divided by the number of pairs). 1 separates perfectly, 0.5 is
/// chance, below 0.5 ranks the wrong way.
public func auroc(positives: [Double], negatives: [Double]) -> Double {
    precondition(!positives.isEmpty && !negatives.isEmpty, "AUROC needs scores of both kinds")
    // Rank all scores together (average ranks for ties); U = Σ ranks of positives − n₊(n₊ + 1)/2.
    let all = (positives.map { ($0, true) } + negatives.map { ($0, false) }).sorted { $0.0 < $1.0 }
    var rankSum = 0.0
    var i = 0
    while i < all.count {
        var j = i
        while j + 1 < all.count && all[j + 1].0 == all[i].0 { j += 1 }
        let averageRank = Double(i + j) / 2 + 1
        for k in i...j where all[k].1 { rankSum += averageRank }
        i = j + 1
    }
    let p = Double(positives.count), n = Double(negatives.count)
    return (rankSum - p * (p + 1) / 2) / (p * n)
}
