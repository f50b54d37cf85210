// An error for the person at the terminal: printed as "Error: <message>" with exit status 1, no usage text.

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
