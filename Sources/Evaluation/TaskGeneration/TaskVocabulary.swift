import Foundation

/// The words the task generator writes with. Sentences are short, have no commas, numbers or
/// abbreviations, and never start a line with "*" or "-", so that every checker sees exactly the
/// structure the generator meant (and sentence counts do not depend on Punkt's learned statistics).
enum TaskVocabulary {
    static let topics = [
        "the ocean", "honey bees", "city gardens", "rainy days", "old maps", "bicycles", "winter sports",
        "bread baking", "the night sky", "mountain trails", "public libraries", "house plants", "river boats",
        "chess", "green tea", "desert animals", "music lessons", "train travel", "wind power", "board games",
    ]

    /// Requests that any response about a topic answers; "{t}" is the topic.
    static let requests = [
        "Write a short note about {t}.", "Tell me about {t}.", "Describe {t} in a few sentences.",
        "Explain why {t} can be interesting.", "Write a brief blog post about {t}.", "Share some thoughts on {t}.",
    ]

    /// Yes/no requests, for tasks whose answer must be one of IFEval's fixed answers.
    static let yesNoRequests = ["Is {t} an interesting topic?", "Would you recommend learning about {t}?"]

    /// Sentences that fit any topic ("{t}" is the topic).
    static let sentences = [
        "Many people enjoy learning about {t}.",
        "Learning about {t} takes a little time but it pays off.",
        "A good first step is to read a short guide about {t}.",
        "People often talk about {t} with friends and family.",
        "There is always something new to notice about {t}.",
        "Spending an afternoon with {t} can be very relaxing.",
        "Some facts about {t} surprise almost everyone.",
        "Local clubs often meet to share ideas about {t}.",
        "Children usually ask many questions about {t}.",
        "Patience helps a lot when you study {t}.",
        "It is easy to start and hard to stop once you explore {t}.",
        "Simple notes help you remember what you learn about {t}.",
        "Writers have described {t} in many different ways.",
        "You do not need special tools to enjoy {t}.",
        "The history of {t} is longer than most people think.",
        "Talking to an expert is a quick way to learn about {t}.",
    ]

    /// Sentences with words in capitals, for capital-word instructions.
    static let emphaticSentences = ["This is VERY important.", "Try it TODAY.", "It is GREAT fun.",
                                    "Do NOT rush it.", "The BEST time to begin is NOW."]

    /// Openers for a paragraph that must start with a given word.
    static let paragraphOpeners = ["Also", "Overall", "Finally", "Sometimes", "Today", "Remember", "Honestly", "Moreover"]

    static let titles = ["A Short Guide", "Notes on {t}", "A Closer Look", "Thoughts on {t}", "Getting Started"]

    static let placeholderSentences = ["Send your questions to [name].", "Send your questions to [name] at [address].",
                                       "Send your questions to [name] at [address] before [date]."]

    static let postscripts = ["Thank you for reading.", "I hope you try it soon.", "Feel free to share this note."]

    static let endPhrases = ["Is there anything else I can help with?", "Thank you for reading.",
                             "Let me know if you have more questions."]

    /// Words to forbid: plausible in such an answer, absent unless the sentences above use them.
    static let forbiddenCandidates = ["weather", "money", "dangerous", "boring", "expensive", "science", "future",
                                      "beautiful", "difficult", "summer", "practice", "nature", "health", "travel"]

    static let bulletIntro = "Here are the main points:"

    static func fill(_ template: String, topic: String) -> String {
        template.replacingOccurrences(of: "{t}", with: topic)
    }

    /// "the ocean is..." → "The ocean is...".
    static func capitalizedFirst(_ text: String) -> String {
        text.prefix(1).uppercased() + text.dropFirst()
    }
}
