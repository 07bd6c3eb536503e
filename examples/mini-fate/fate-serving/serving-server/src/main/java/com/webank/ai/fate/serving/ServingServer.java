package com.webank.ai.fate.serving;

import com.webank.ai.fate.core.Banner;

public final class ServingServer {
    public static void main(String[] args) {
        System.out.println(Banner.banner("serving-server", 8000));
    }
}
