import XCTest
final class TransformerPlaceholderTests: XCTestCase { func testNothing() {} }
