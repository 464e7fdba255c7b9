/// A fixed array that two threads fill at distinct indices (each index written once, by one
/// thread) and that is read only after both are done; the caller orders that, for example with
/// an atomic count each writer adds to with release ordering and the reader loads with acquire.
///
/// An `Array` cannot be shared this way: a write through it from two threads races on its
/// copy-on-write check. The raw storage lives here, in the layer that holds the unsafe pointers.
@usableFromInline package final class SharedSlots<Element>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Element>
    @usableFromInline package let count: Int

    /// `count` slots holding `value`. Cost: one allocation.
    package init(count: Int, repeating value: Element) {
        precondition(count >= 0, "negative slot count")
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: value, count: count)
        self.count = count
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    @inlinable package subscript(index: Int) -> Element {
        get {
            precondition(index >= 0 && index < count, "slot out of range")
            return base[index]
        }
        set {
            precondition(index >= 0 && index < count, "slot out of range")
            base[index] = newValue
        }
    }
}
