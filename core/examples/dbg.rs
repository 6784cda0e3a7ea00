fn main() {
    for f in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&f).unwrap();
        let c = conveyor_core::compile::compile(&f, &text);
        for d in &c.diagnostics { println!("{d}"); }
        if let Some(p) = c.product { println!("{}", serde_json::to_string_pretty(&p).unwrap()); }
    }
}
