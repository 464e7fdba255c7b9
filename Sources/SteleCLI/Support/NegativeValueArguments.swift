/// `--from -1` would read as a missing value followed by an option `-1`: a negative number right
/// after an option is passed as its value (`--from=-1`), so that it gets the option's own plain
/// message ("must be 0 or more", "is invalid for --from").
func joiningNegativeValues(_ arguments: [String]) -> [String] {
    var out: [String] = []
    for argument in arguments {
        if let last = out.last, last.hasPrefix("--"), last != "--", !out.contains("--"), !last.contains("="), argument.hasPrefix("-"),
           argument.dropFirst().allSatisfy({ $0.isNumber || $0 == "." }), argument.count > 1 {
            out[out.count - 1] = last + "=" + argument
        } else {
            out.append(argument)
        }
    }
    return out
}
