//! Generates server stubs, the client, schema types and the API reference from `spec/`.

fn main() {
    eprintln!("quayside-codegen: nothing to generate yet");
}
