//! The small, unsafe edges of the C API: panic containment, argument checks, and the gate that
//! keeps a callback from running on an object that is being deleted.

use std::cell::Cell;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Runs the body of an exported function. A Rust panic inside is caught here and turned into
/// `fallback`, so no unwinding ever crosses into C (which would be undefined behaviour). The
/// panic's message still goes to stderr through the default hook.
pub(crate) fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// A mutex whose poisoning (a panic while it was held, caught by `guard`) does not make every
/// later call fail: the data it protects stays consistent because every critical section here
/// is a plain insert/remove/replace.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Borrows a C string argument as UTF-8. `None` for NULL or for bytes that are not UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and unchanged for `'a`
/// (the duration of the call, for arguments).
pub(crate) unsafe fn str_arg<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// Borrows `*p` when `p` is not NULL.
///
/// # Safety
/// `p` is NULL or points to a live, properly aligned `T` for `'a`.
pub(crate) unsafe fn ref_arg<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: as the caller guarantees.
    unsafe { p.as_ref() }
}

/// Application pointers (`user_data`, callback tables, object handles) moved to the dispatch
/// thread. The SDK never dereferences `user_data`; it only hands it back to the application's
/// callbacks, whose thread-safety is the application's documented contract (callbacks run on
/// the session's dispatch thread).
#[derive(Clone, Copy)]
pub(crate) struct AppPtr<T>(pub(crate) T);
// SAFETY: see above; the wrapped values are plain pointers or tables of function pointers.
unsafe impl<T> Send for AppPtr<T> {}
// SAFETY: as for Send: shared access only copies the pointers.
unsafe impl<T> Sync for AppPtr<T> {}

thread_local! {
    /// The gate whose callback is running on this thread (0 when none): lets that callback
    /// delete its own object without waiting for itself.
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

/// Serialises an object's callbacks with its removal. Callbacks run while holding the gate and
/// only if the object is still alive; deleting (or unregistering) an object marks it and then
/// takes the gate once, so when the delete returns no callback of it is running or will run.
#[derive(Default)]
pub(crate) struct Gate {
    dead: AtomicBool,
    lock: Mutex<()>,
}

impl Gate {
    fn key(&self) -> usize {
        self as *const Gate as usize
    }

    /// Runs `f` unless the object is dead; `check` (evaluated under the gate) can veto too.
    pub(crate) fn run(&self, check: impl FnOnce() -> bool, f: impl FnOnce()) {
        let _held = lock(&self.lock);
        if self.dead.load(Ordering::Acquire) || !check() {
            return;
        }
        let prev = IN_CALLBACK.with(|c| c.replace(self.key()));
        f();
        IN_CALLBACK.with(|c| c.set(prev));
    }

    /// Waits until no callback of this object runs (returns at once when called from inside
    /// one of its callbacks: that callback is the caller).
    pub(crate) fn quiesce(&self) {
        if IN_CALLBACK.with(|c| c.get()) != self.key() {
            drop(lock(&self.lock));
        }
    }

    /// No callback of this object runs after this returns.
    pub(crate) fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        self.quiesce();
    }
}
