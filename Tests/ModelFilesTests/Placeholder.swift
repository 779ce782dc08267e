import XCTest
final class ModelFilesPlaceholderTests: XCTestCase { func testNothing() {} }
