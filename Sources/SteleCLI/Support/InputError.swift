/// Bad input data (not usage): exit code 1.
struct InputError: Error {
    let message: String
}
