//! Prints the Web SDK's generated protocol file (see `umbra_protocol::typescript`).

fn main() {
    print!("{}", umbra_protocol::typescript::generate());
}
