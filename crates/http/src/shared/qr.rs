//! QR codes, as SVG, for authenticator apps to scan.

/// The QR code of `data` as an SVG document; `None` if the data is too long for one.
pub fn svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .quiet_zone(true)
            .build(),
    )
}

/// The QR code of `data` as a `data:` URL (for an `<img src>` under a CSP that allows
/// `img-src data:`).
pub fn svg_data_url(data: &str) -> Option<String> {
    use base64::Engine as _;
    svg(data).map(|s| format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(s)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_otpauth_uri_fits() {
        let svg =
            super::svg("otpauth://totp/Acme:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme")
                .unwrap_or_default();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
        assert!(super::svg_data_url("x").is_some_and(|u| u.starts_with("data:image/svg+xml;base64,")));
    }
}
