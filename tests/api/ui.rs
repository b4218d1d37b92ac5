//! The web dashboard: page and assets served from the binary with their
//! content types, caching headers and Content-Security-Policy.

use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

use crate::helpers::*;

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn assert_restrictive_csp(response: &reqwest::Response) {
    let csp = header(response, CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive:?}: {csp}");
    }
    assert!(!csp.contains("unsafe"), "CSP allows unsafe sources: {csp}");
    assert!(!csp.contains('*'), "CSP allows wildcards: {csp}");
    assert_eq!(
        header(response, reqwest::header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
}

/// The `/ui/assets/...` URLs the page references.
fn asset_urls(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|s| s.starts_with("/ui/assets/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_page_is_html_revalidated_by_etag_under_a_restrictive_csp() {
    let app = spawn_app().await;
    let response = app.get("/ui").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&response, CACHE_CONTROL), "no-cache");
    assert_restrictive_csp(&response);
    let etag = header(&response, ETAG).to_string();
    let page = response.text().await.unwrap();
    assert!(page.contains("<main"), "not the dashboard page: {page}");
    assert!(!page.contains("{{build}}"), "asset URLs not filled in");
    // No inline script or style: everything comes from hashed asset URLs.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains("<script type=\"module\" src=\"/ui/assets/"));
    assert!(!page.contains("style="));
    assert!(!page.contains("<style"));
    assert!(!page.contains("http://") && !page.contains("https://"));

    let again = app
        .client
        .get(app.url("/ui"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, ETAG), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let stale = app
        .client
        .get(app.url("/ui"))
        .header(IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test]
async fn assets_have_their_content_types_and_are_cached_for_a_year() {
    let app = spawn_app().await;
    let page = app.get("/ui").await.text().await.unwrap();
    let urls = asset_urls(&page);
    assert!(urls.len() >= 3, "page references too few assets: {urls:?}");
    let build = urls[0].split('/').nth(3).unwrap().to_string();
    assert_eq!(build.len(), 16, "build hash in {}", urls[0]);

    // The page's assets, and every module the entry script imports.
    let app_js = app
        .get(&format!("/ui/assets/{build}/app.js"))
        .await
        .text()
        .await
        .unwrap();
    let mut all = urls.clone();
    for module in app_js
        .split('"')
        .filter(|s| s.starts_with("./") && s.ends_with(".js"))
    {
        all.push(format!("/ui/assets/{build}/{}", &module[2..]));
    }
    assert!(all.len() >= 9, "app.js imports too few modules: {all:?}");
    for url in all {
        let response = app.get(&url).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let expected = if url.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else if url.ends_with(".css") {
            "text/css; charset=utf-8"
        } else if url.ends_with(".svg") {
            "image/svg+xml"
        } else {
            panic!("unexpected asset {url}")
        };
        assert_eq!(header(&response, CONTENT_TYPE), expected, "{url}");
        assert_eq!(
            header(&response, CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert_restrictive_csp(&response);
        let body = response.text().await.unwrap();
        assert!(!body.is_empty(), "{url} is empty");
        // The SVG namespace is a name, not a location.
        let body = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"),
            "{url} refers to another host"
        );
    }
}

#[tokio::test]
async fn an_asset_of_another_build_or_an_unknown_file_is_a_404_problem() {
    let app = spawn_app().await;
    let page = app.get("/ui").await.text().await.unwrap();
    let build = asset_urls(&page)[0].split('/').nth(3).unwrap().to_string();
    assert_problem(
        app.get("/ui/assets/0000000000000000/app.js").await,
        404,
        Some("asset_not_found"),
    )
    .await;
    assert_problem(
        app.get(&format!("/ui/assets/{build}/secrets.txt")).await,
        404,
        Some("asset_not_found"),
    )
    .await;
    assert_problem(
        app.get(&format!("/ui/assets/{build}/..%2Fconfig.rs")).await,
        404,
        None,
    )
    .await;
}

#[tokio::test]
async fn the_root_redirects_to_the_dashboard() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&response, reqwest::header::LOCATION), "/ui");
}

#[tokio::test]
async fn with_the_dashboard_off_neither_the_page_nor_the_redirect_exist() {
    let app = spawn_app_with(|s| s.http.dashboard = false).await;
    assert_problem(app.get("/ui").await, 404, Some("route_not_found")).await;
    assert_problem(app.get("/").await, 404, Some("route_not_found")).await;
}

#[tokio::test]
async fn the_page_needs_no_key_while_the_api_it_calls_does() {
    let app = spawn_app_with(|s| {
        s.auth.keys = vec!["admin+read:dashboard-key-0123456789abcdef".into()];
    })
    .await;
    let page = app.get("/ui").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    for url in asset_urls(&page) {
        assert_eq!(app.get(&url).await.status(), StatusCode::OK, "{url}");
    }
    assert_problem(app.get("/models").await, 401, Some("unauthorized")).await;
}
