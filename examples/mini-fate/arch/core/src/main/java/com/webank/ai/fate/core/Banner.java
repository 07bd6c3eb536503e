package com.webank.ai.fate.core;

import org.apache.commons.lang3.StringUtils;

/** Shared by every module: how a service announces itself. */
public final class Banner {
    private Banner() {}

    public static String banner(String service, int port) {
        return StringUtils.capitalize(service) + " listening on " + port;
    }
}
