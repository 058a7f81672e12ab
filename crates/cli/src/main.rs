fn main() {
    println!("callseal: not yet built");
}
