//! X's OpenAPI document loader: any bytes give tools or an error, never a
//! panic, and every tool has a valid, unique name.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(catalog) = xmcp_openapi::load(data, &xmcp_openapi::Options::default()) else {
        return;
    };
    let mut names = std::collections::HashSet::new();
    for tool in &catalog.tools {
        assert!(xmcp_openapi::is_valid_tool_name(&tool.name), "{:?}", tool.name);
        assert!(names.insert(tool.name.clone()), "duplicate {:?}", tool.name);
        // Arguments never crash the request builder either.
        let _ = tool.request(serde_json::Map::new(), Some("1"));
    }
});
