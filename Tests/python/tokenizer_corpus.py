"""A seeded corpus of strings that stress a byte-level BPE tokenizer (over 2,000 of them).

Kinds: words and sentences in many scripts, emoji (modifiers, ZWJ sequences, flags, keycaps), code,
runs of every kind of whitespace and newline, digits of many number systems, English contractions
(and their case and Unicode variants), special tokens inside text, random scalars from the whole
Unicode range (controls, combining marks, private use, unassigned), and a few very long strings.
"""
import random

SPECIAL = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<file_sep>", "<empty_output>"]
NEAR_SPECIAL = ["<|im_", "<|im_end|", "<|im_start", "|im_end|>", "<<|im_end|>>", "<|IM_END|>", "< |im_end|>"]

SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœŀłŋſǆǈ",
    "greek": "αβγδεζηθικλμνξοπρσςτυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩάέήίόύώϊϋΐΰ",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯіїєґ",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي" + "ًٌٍَُِّْ" + "ء",
    "hebrew": "אבגדהוזחטיכלמנסעפצקרשתךםןףץ" + "ְִֵֶַָֹֻּ",
    "devanagari": "अआइईउऊऋएऐओऔकखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह" + "ािीुूृेैोौं्",
    "bengali": "অআইঈউঊঋএঐওঔকখগঘঙচছজঝঞটঠডঢণতথদধনপফবভমযরলশষসহ" + "ািীুূেৈোৌ্",
    "tamil": "அஆஇஈஉஊஎஏஐஒஓஔகஙசஞடணதநபமயரலவழளறன" + "ாிீுூெேைொோௌ்",
    "thai": "กขฃคฅฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรฤลฦวศษสหฬอฮ" + "ะัาำิีึืฺุู็่้๊๋์",
    "han": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明家",
    "japanese": "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンー",
    "hangul": "가나다라마바사아자차카타파하각난닫랄맘밥삿앙잦찿캌탙팦핳한국어대한민국",
    "hangul_jamo": "\u1100\u1161\u11a8\u1102\u1165\u11ab\u1103\u1169",
    "armenian": "աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտրցւփքօֆԱԲԳԴԵԶԷԸԹԺԻԼԽԾԿ",
    "georgian": "აბგდევზთიკლმნოპჟრსტუფქღყშჩცძწჭხჯჰ",
    "ethiopic": "ሀሁሂሃሄህሆለሉሊላሌልሎሐሑሒሓሔሕሖመሙሚማሜምሞ",
    "khmer": "កខគឃងចឆជឈញដឋឌឍណតថទធនបផពភមយរលវសហឡអ" + "ាិីឹឺុូួើឿៀេែៃោៅំះ់៌៍៎៏័",
    "tibetan": "ཀཁགངཅཆཇཉཏཐདནཔཕབམཙཚཛཝཞཟའཡརལཤསཧཨ" + "ིེོུ",
    "mongolian": "ᠠᠡᠢᠣᠤᠥᠦᠧᠨᠩᠪᠫᠬᠭᠮᠯᠰᠱᠲᠳᠴᠵᠶᠷᠸᠹᠺᠻᠼᠽᠾᠿ",
    "math": "∀∂∃∅∇∈∉∋∏∑−∓∗√∝∞∠∧∨∩∪∫∴≈≠≡≤≥⊂⊃⊆⊇⊕⊗𝐀𝐁𝐂𝑎𝑏𝑐𝔸𝔹ℂℕℚℝℤ",
    "symbols": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¢£¤¥¦§¨©ª«¬®¯°±²³´µ¶·¸¹º»¼½¾¿×÷–—‘’‚“”„†‡•…‰′″‹›€™←↑→↓↔",
}

EMOJI = [
    "😀", "😂", "🥲", "🤖", "👍", "👍🏻", "👍🏿", "👋🏽", "❤️", "❤", "☺️", "✨", "🔥", "💯", "🎉",
    "👨‍👩‍👧‍👦", "👩‍💻", "👨🏾‍🚀", "🧑‍🤝‍🧑", "🏳️‍🌈", "🏴‍☠️", "👁️‍🗨️", "🙇‍♀️", "🤷🏼‍♂️",
    "🇺🇸", "🇯🇵", "🇩🇪", "🇫🇷🇧🇷", "1️⃣", "#️⃣", "*️⃣", "©️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🫠", "🫶🏾", "\u200d", "\ufe0f",
]

CODE = [
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "let xs = [1, 2, 3].map { $0 * 2 }\nprint(xs)\n",
    "const obj = {\"key\": 'value', arr: [1,2,3], nested: {a: null}};",
    "<div class=\"main\"><p>Hello &amp; welcome</p></div>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "if __name__ == '__main__':\n    main()\n",
    "x=1;y=2;z=x+y*3-4/5%6**7//8",
    "fn main() -> Result<(), Box<dyn Error>> {\n    Ok(())\n}",
    "    \n\t\t  \r\n",
    "json = {\"a\": [1.5e-10, -2, true, false], \"b\": \"\\u00e9\"}",
    "git commit -m 'Fix bug #123' && git push origin main",
    "$ ls -la /usr/local/bin | grep -v '^d' > out.txt 2>&1",
    "a->b; c::d; e=>f; g!==h; i<=>j; k...l; m??n; o?.p",
    "/* comment */ // line comment\n/** doc */",
    "```python\nprint('hi')\n```",
    "@property\ndef name(self) -> str: ...",
    "matrix[i][j] = matrix[i-1][j-1] + 1\n",
    "\tindented\n\t\tmore\n\t\t\tdeepest",
]

WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", "\x0b", "\x0c", "\x85", "\u00a0", "\u1680",
              "\u2000", "\u2003", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
              "\u200b", "\ufeff", "\x1c", "\x1f"]

DIGITS = ["0123456789", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "০১২৩৪৫৬৭৮৯", "０１２３４５６７８９",
          "²³¹⁰⁴", "₀₁₂", "½¼¾⅓⅛", "ⅠⅡⅢⅣⅫ", "①②③⑩", "𝟎𝟏𝟐𝟗", "〇一二三"]

CONTRACTIONS = ["I'm", "you're", "they've", "we'll", "she'd", "it's", "don't", "can't", "won't",
                "I'M", "YOU'RE", "WE'LL", "They'Ve", "It'S", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
                "''s", "'", "'''", "O'Brien", "rock'n'roll", "'ſ", "Iʼm", "it’s", "don’t", "'ll've",
                " 's", "x's'", "'S'", "'LL", "'Ll", "'lL", "'Re", "'rE", "'D'"]

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "world", "tokenizer",
         "internationalization", "Straße", "naïve", "café", "résumé", "coöperate", "Ærøskøbing", "HTTPServer",
         "getElementById", "snake_case_name", "CamelCase", "UPPER", "e.g.", "U.S.A.", "Mr.", "well-known"]


def _scalar(rng):
    """A random Unicode scalar, biased towards the low planes."""
    plane = rng.random()
    if plane < 0.5:
        c = rng.randrange(0x20, 0x3000)
    elif plane < 0.8:
        c = rng.randrange(0x3000, 0x10000)
    elif plane < 0.95:
        c = rng.randrange(0x10000, 0x30000)
    else:
        c = rng.randrange(0x30000, 0x110000)
    if 0xD800 <= c <= 0xDFFF:
        c = 0xFFFD
    return chr(c)


def _word(rng, alphabet, low=1, high=9):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def _sentence(rng, alphabet):
    parts = []
    for _ in range(rng.randint(1, 12)):
        parts.append(_word(rng, alphabet))
        parts.append(rng.choice([" ", " ", " ", ", ", ". ", "  ", "\n", "! ", "? ", " - ", "\t"]))
    return "".join(parts).rstrip() if rng.random() < 0.5 else "".join(parts)


def _mixed(rng):
    pieces = []
    for _ in range(rng.randint(2, 14)):
        kind = rng.random()
        if kind < 0.25:
            pieces.append(rng.choice(WORDS))
        elif kind < 0.4:
            pieces.append(_word(rng, SCRIPTS[rng.choice(list(SCRIPTS))]))
        elif kind < 0.5:
            pieces.append(rng.choice(EMOJI))
        elif kind < 0.6:
            pieces.append(_word(rng, rng.choice(DIGITS), 1, 12))
        elif kind < 0.7:
            pieces.append(rng.choice(CONTRACTIONS))
        elif kind < 0.8:
            pieces.append("".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 5))))
        elif kind < 0.88:
            pieces.append(rng.choice(SPECIAL + NEAR_SPECIAL))
        elif kind < 0.94:
            pieces.append(_scalar(rng))
        else:
            pieces.append(rng.choice(SCRIPTS["symbols"]) * rng.randint(1, 4))
        if rng.random() < 0.6:
            pieces.append(rng.choice([" ", "", "\n", " "]))
    return "".join(pieces)


def corpus(seed=20240601):
    """The test corpus: a list of strings, the same on every run."""
    rng = random.Random(seed)
    texts = ["", " ", "a", "\n", "  ", "\t\t", "Hello world", "Hello, world!", "<|im_end|>",
             "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "<|im_end|><|im_end|>",
             " <|im_end|> ", "x<|endoftext|>y", "\r\n\r\n", "a\x04b", "\x04", "\x06\x13\x14\x16\x1d", "\x7f", "\x00"]
    for name, alphabet in SCRIPTS.items():
        texts += [_sentence(rng, alphabet) for _ in range(30)]
    texts += [rng.choice(EMOJI) for _ in range(20)]
    texts += ["".join(rng.choice(EMOJI) + rng.choice(["", " ", "\n", "a"]) for _ in range(rng.randint(2, 8))) for _ in range(80)]
    texts += CODE
    texts += [rng.choice(CODE).replace("    ", rng.choice(["\t", "  ", "        "])) * rng.randint(1, 3) for _ in range(80)]
    for _ in range(200):
        texts.append("".join(rng.choice(WHITESPACE + ["a", "b", "1", ".", "é", "日"]) for _ in range(rng.randint(1, 30))))
    for _ in range(150):
        digits = rng.choice(DIGITS)
        texts.append(rng.choice(["", "x", " ", "$", "-", "v", "3.", "(", " x "]) + _word(rng, digits + rng.choice(["", ".,", " ", ":/-"]), 1, 25))
    for _ in range(150):
        texts.append(" ".join(rng.choice(CONTRACTIONS + WORDS) for _ in range(rng.randint(1, 10))))
    for _ in range(200):
        parts = [rng.choice(SPECIAL + NEAR_SPECIAL + [" ", "\n", "a", "Hi", "日本", "😀", "  "]) for _ in range(rng.randint(1, 10))]
        texts.append("".join(parts))
    texts += ["".join(_scalar(rng) for _ in range(rng.randint(1, 40))) for _ in range(250)]
    texts += ["".join(rng.choice("\u0300\u0301\u0302\u0308\u0327\u0338\u20dd\u0e31\u093f") for _ in range(rng.randint(1, 6))) + "a" for _ in range(30)]
    texts += [_mixed(rng) for _ in range(700)]
    texts += [
        " " * 5000, "a" * 3000, "\n" * 1000, "ab" * 2000, "😀" * 500, "1" * 1000, "日本語" * 700,
        " \n" * 700, "\t " * 800, "".join(rng.choice(SCRIPTS["latin"]) for _ in range(4000)),
        "".join(rng.choice("0123456789abcdef") for _ in range(4000)),
    ]
    return texts


def every_scalar_texts(chunk=64):
    """Strings that together put every Unicode scalar in the contexts that show its class (after a
    space, before and after a letter, before a digit, before a newline), one chunk of scalars per
    string (short strings: Hugging Face slows down on long ones)."""
    scalars = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = []
    for start in range(0, len(scalars), chunk):
        pieces = []
        for c in scalars[start:start + chunk]:
            s = chr(c)
            pieces.append(f" {s}a{s}1{s}\n")
        texts.append("".join(pieces))
    return texts


if __name__ == "__main__":
    texts = corpus()
    print(len(texts), sum(len(t.encode()) for t in texts), "bytes")
