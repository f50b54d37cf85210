// Python modules the tests check exported files with (PyPI's perfetto schema, protobuf), installed
// with pip when missing.
import Foundation

public enum PythonModules {
    public struct Missing: Error, CustomStringConvertible { public var description: String }

    /// Imports `module` or installs `packages` with pip; throws saying why when neither works.
    public static func ensure(_ module: String, packages: [String]) throws {
        let check = try Shell.runCapturing("/usr/bin/env", ["python3", "-c", "import \(module)"])
        if check.status == 0 { return }
        let install = try Shell.runCapturing("/usr/bin/env", ["python3", "-m", "pip", "install", "--quiet"] + packages,
                                             timeout: 300)
        guard install.status == 0 else {
            throw Missing(description: "python3 cannot import \(module) and pip could not install "
                + "\(packages.joined(separator: " ")): \(install.stderr.prefix(500))")
        }
    }
}
